"""Every bad input gets one line (what is wrong, how to fix it), exit code 2, and nothing written is lost.

The cases here also write the table of bad inputs in docs/errors.md: the table shows the
messages these tests got. `BENCH_UPDATE_DOCS=1 pytest tests/frameworks/test_bad_inputs.py`
rewrites it; otherwise the last test fails when the page and the messages differ.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from backends import DEFAULT_FRAMEWORKS, installed
from bench.cli import main
from bench.optimizers import OPTIMIZERS
from bench.schedules import SCHEDULES

# the tox envs that run this file (see tests/conftest.py); its last test reads the messages of those before it, so
# one process runs the file, in order (tox -e torch: -n 2 --dist loadfile)
pytestmark = pytest.mark.env_torch

ERRORS_PAGE = Path(__file__).resolve().parents[2] / "docs" / "errors.md"
START, END = "<!-- bad-inputs:start -->", "<!-- bad-inputs:end -->"
MNIST_MD5 = "f68b3c2dcbeaaa9fbdd348bbdeb94873"
GOOD_STUDY = {"dataset": '"digits"', "model": '"mlp"', "epochs": "1", "batch_size": "16", "lr": "0.1"}
MISSING_FRAMEWORK = next((f for f in DEFAULT_FRAMEWORKS if not installed(f)), None)


def study_file(tmp: Path, **changes) -> str:
    """A valid study file with some keys changed (a value) or removed (None)."""
    keys = {**GOOD_STUDY, **changes}
    path = tmp / "study.toml"
    path.write_text("".join(f"{k} = {v}\n" for k, v in keys.items() if v is not None))
    return str(path)


def unwritable(tmp: Path) -> str:
    (tmp / "a-file").write_text("keep me")
    return str(tmp / "a-file" / "results")


def blocked(tmp: Path) -> str:
    """A results folder where a study's folder should be, a file is."""
    (tmp / "blocked").mkdir()
    (tmp / "blocked" / "digits").write_text("keep me")
    return str(tmp / "blocked")


def truncated_mnist(tmp: Path, real: Path) -> str:
    shutil.copytree(real / "mnist", tmp / "data" / "mnist")
    image = tmp / "data" / "mnist" / "train-images-idx3-ubyte.gz"
    image.write_bytes(image.read_bytes()[:100_000])
    return str(tmp / "data")


def empty_folder(tmp: Path) -> str:
    (tmp / "data").mkdir()
    return str(tmp / "data")


@dataclass
class Case:
    bad_input: str
    command: str  # as docs/errors.md shows it; {out}, {study}, {empty}, {truncated}, {unwritable}, {missing} are filled in
    expect: str  # a part of the message that says what is wrong
    fix: str  # a part that says how to fix it
    study: tuple[tuple[str, str | None], ...] = ()  # {study}: a valid study file with these keys changed (None: removed)

    def argv(self, tmp: Path, real: Path) -> list[str]:
        fill = {"out": str(tmp / "out"), "missing": MISSING_FRAMEWORK or "-"}
        if "{study}" in self.command:
            fill["study"] = study_file(tmp, **dict(self.study))
        if "{unwritable}" in self.command:
            fill["unwritable"] = unwritable(tmp)
        if "{blocked}" in self.command:
            fill["blocked"] = blocked(tmp)
        if "{truncated}" in self.command:
            fill["truncated"] = truncated_mnist(tmp, real)
        if "{empty}" in self.command:
            fill["empty"] = empty_folder(tmp)
        words = self.command.format(**fill).split()  # an environment the command is shown with: set by no_cache
        return words[words.index("bench") + 1:]

    def shown_command(self) -> str:
        command = self.command.replace("{study}", "study.toml").replace("{missing}", MISSING_FRAMEWORK or "paddle")
        command = command.replace("{out}", "$OUT").replace("{empty}", "$EMPTY").replace("{truncated}", "$DATA")
        command = command.replace("{unwritable}", "a-file/results").replace("{blocked}", "$OUT")
        changes = "; ".join(f"{k} = {v}" if v is not None else f"no {k}" for k, v in self.study)
        return f"`{command}`" + (f" with `{changes}`" if changes else "")


CASES = [
    Case("unknown study", "bench run nope --out {out}", "unknown study 'nope'", "lr-sweep"),
    Case("unknown framework", "bench run digits --frameworks mxnet --out {out}", "unknown framework 'mxnet'", "choose from"),
    Case("unknown model", "bench run {study} --out {out}", "unknown model 'resnet'", "lenet", (("model", '"resnet"'),)),
    Case("unknown optimizer", "bench run {study} --out {out}", "unknown optimizer 'lamb'", "adam",
         (("optimizer", '{ name = "lamb" }'),)),
    Case("unknown schedule", "bench run {study} --out {out}", "onecycle", "cosine", (("schedule", '{ name = "onecycle" }'),)),
    Case("framework not installed", "bench run digits --frameworks {missing} --out {out}", "is not installed", "pip install -e"),
    Case("lr <= 0", "bench run {study} --out {out}", "lr must be a finite number > 0", "study.toml", (("lr", "0"),)),
    Case("lr not finite", "bench run {study} --out {out}", "lr must be a finite number > 0, got inf", "study.toml",
         (("lr", "inf"),)),
    Case("schedule parameter of the wrong type", "bench run {study} --out {out}",
         "milestones must be a list of increasing integers", "study.toml",
         (("schedule", '{ name = "multistep", milestones = "2" }'),)),
    Case("warm-up longer than the cosine", "bench run {study} --out {out}", "warmup_epochs must be below t_max",
         "study.toml", (("schedule", '{ name = "warmup_cosine", warmup_epochs = 5, t_max = 3 }'),)),
    Case("optimizer parameter out of range", "bench run {study} --out {out}", "momentum must be a finite number in [0, 1)",
         "study.toml", (("optimizer", '{ name = "sgd", momentum = -0.5 }'),)),
    Case("a grid value of the wrong type", "bench run {study} --out {out}", "each [grid] lr must be a finite number",
         "study.toml", (("grid", '{ lr = ["0.1"] }'),)),
    Case("a grid lr not a number", "bench run {study} --out {out}", "study.toml:6: each [grid] lr must be a finite number "
         "> 0, got nan", "study.toml:6", (("grid", "{ lr = [0.1, nan] }"),)),
    Case("a reference to a metric lrbench does not record", "bench run {study} --out {out}",
         "[[reference]]: unknown metric 'val.los'", "val.loss",
         (("reference", '[{ metric = "val.los", epoch = 1, value = 0.5, tolerance = 0.1 }]'),)),
    Case("unknown normalisation", "bench run {study} --out {out}", "unknown normalize 'zscore'", "mean",
         (("normalize", '"zscore"'),)),
    Case("train_size past the dataset", "bench run {study} --out {out}", "digits has only 1437 examples",
         "train_size <= 1437", (("train_size", "5000"),)),
    Case("a claim on a metric lrbench does not record", "bench run {study} --out {out}", "unknown metric 'val.los'",
         "val.loss", (("claims", "[{ text = \"t\", check = \"final('val.los') < 1\", source = \"lrbench\" }]"),)),
    Case("a study name that is a path", "bench run {study} --out {out}", "name '../x' is also a folder name",
         "start with an ASCII letter or digit",
         (("name", '"../x"'),)),
    Case("a momentum form the framework lacks", "bench run {study} --frameworks torch --out {out}",
         "torch cannot run momentum_form keras", "drop that config for torch",
         (("optimizer", '{ name = "sgd", momentum = 0.9, momentum_form = "keras" }'),)),
    Case("--frameworks naming none", "bench run digits --frameworks , --out {out}", "names no framework",
         "drop --frameworks"),
    Case("epochs < 1", "bench run digits --epochs 0 --out {out}", "--epochs must be at least 1", "--epochs"),
    Case("a protocol the study does not run", "bench run digits --protocol warm_start --out {out}",
         "study 'digits' has no warm_start runs: its protocols are fresh", "drop --protocol"),
    Case("seeds < 1", "bench run digits --seeds 0 --out {out}", "--seeds must be at least 1", "--seeds"),
    Case("jobs < 1", "bench run digits --jobs 0 --out {out}", "--jobs must be at least 1", "--jobs"),
    Case("threads < 1", "bench run digits --threads 0 --out {out}", "--threads must be at least 1", "--threads"),
    Case("perf: rounds < 1", "bench perf --rounds 0 --out {out}", "--rounds must be at least 1", "--rounds"),
    Case("find-lr: min-lr not below max-lr", "bench find-lr digits --min-lr 1 --max-lr 0.1 --out {out}",
         "need 0 < min-lr < max-lr", "--min-lr 1"),
    Case("find-lr: steps < 2", "bench find-lr digits --steps 1 --out {out}", "--steps must be at least 2", "--steps"),
    Case("a one-cycle shorter than its run", "bench run {study} --out {out}", "its cycle of 1 epochs ends before the run's 2",
         "set cycle_epochs to at least 2", (("epochs", "2"), ("schedule", '{ name = "one_cycle", cycle_epochs = 1 }'))),
    Case("batch size < 1", "bench run {study} --out {out}", "batch_size", "study.toml", (("batch_size", "0"),)),
    Case("batch larger than the data", "bench run {study} --out {out}",
         "batch_size 64 is larger than its 32 training examples", "lower batch_size",
         (("batch_size", "64"), ("train_size", "32"))),
    Case("study file: a typo", "bench run {study} --out {out}", "epocs", "allowed", (("epocs", "3"),)),
    Case("study file: wrong type", "bench run {study} --out {out}", "epochs", "study.toml", (("epochs", '"ten"'),)),
    Case("study file: missing key", "bench run {study} --out {out}", "dataset", "study.toml", (("dataset", None),)),
    Case("schedule timing unknown", "bench run {study} --out {out}", "timing must be one of epoch, after_epoch", "before",
         (("schedule", '{ name = "inverse_sqrt", timing = "before" }'),)),
    Case("warm start without a grid of lrs", "bench run {study} --out {out}", "warm_start", "[grid] lr list",
         (("protocol", '"warm_start"'),)),
    Case("unknown init", "bench run {study} --out {out}", "init must be one of torch, glorot", "xavier",
         (("init", '"xavier"'),)),
    Case("data missing", "XDG_CACHE_HOME=$TMP/xdg bench run lr-sweep --quick --data-dir {empty} --out {out}",
         "mnist is missing 4 files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
         "t10k-labels-idx1-ubyte.gz)", "put them in $TMP/data/mnist/ or $TMP/xdg/lrbench/mnist/"),
    Case("data corrupt or truncated", "bench run lr-sweep --quick --data-dir {truncated} --out {out}", MNIST_MD5,
         "train-images-idx3-ubyte.gz"),
    Case("results folder not writable", "bench run digits --out {unwritable}", "cannot write results to", "--out"),
    Case("a study's folder that is a file", "bench run digits --out {blocked}", "digits is a file, not a folder",
         "move it away or choose another --out"),
    Case("threads beyond the cores", "bench run digits --threads 1024 --out {out}", "is more than this machine's",
         "give at most"),
    Case("--device cuda without a GPU", "bench run digits --quick --frameworks torch --device cuda --out {out}",
         "--device cuda but torch sees no CUDA GPU", "--device cpu"),
    Case("--quick on a study without [quick]", "bench run {study} --quick --out {out}", "has no [quick] preset",
         "drop --quick"),
    Case("epochs past any sensible run", "bench run {study} --out {out}", "epochs 1000000000 is more than 100000",
         "give fewer epochs", (("epochs", "1000000000"),)),
    Case("--epochs past any sensible run", "bench run digits --epochs 1000000000 --out {out}",
         "--epochs must be at most 100000", "--epochs"),
    Case("a warm-up as long as the run", "bench run {study} --out {out}",
         "its warm-up of 100000 steps is as long as the run's 90 steps or longer", "shorten warmup_steps",
         (("schedule", '{ name = "cosine", t_max = 1, warmup_steps = 100000 }'),)),
    Case("a reference past the study's last epoch", "bench run {study} --out {out}",
         "[[reference]] val.loss at epoch 50: the study's runs end at epoch 1", "give an epoch from 1 to 1",
         (("reference", '[{ metric = "val.loss", epoch = 50, value = 0.5, tolerance = 0.1 }]'),)),
    Case("a claim at an epoch past the last", "bench run {study} --out {out}",
         "at() epoch 50: the study's runs have epochs 1 to 1", "study.toml",
         (("claims", "[{ text = \"t\", check = \"at('val.accuracy', 50) > 0.5\", source = \"lrbench\" }]"),)),
    Case("Ray address that does not answer", "bench run digits --quick --ray-address 127.0.0.1:9 --out {out}",
         "Ray address 127.0.0.1:9 does not answer", "ray start --head"),
]
MESSAGES: dict[str, str] = {}  # bad input -> the line it got, as docs/errors.md shows it


# The lists of every declared name, as the page shows them: a new optimizer or schedule leaves the page as it is.
DECLARED_LISTS = {", ".join(OPTIMIZERS): "<every optimizer bench/optimizers.py declares>",
                  ", ".join(SCHEDULES): "<every schedule bench/schedules.py declares>"}


def shown(line: str, tmp: Path, real: Path) -> str:
    """The message with this machine's paths (and the lists of declared names) replaced by placeholders."""
    cores = os.cpu_count() or 1  # the page shows the same line on any machine
    line = line.replace(f"machine's {cores} cores", "machine's N cores").replace(f"give at most {cores}", "give at most N")
    for names, placeholder in DECLARED_LISTS.items():
        line = line.replace(names, placeholder)
    return line.replace(str(tmp / "blocked"), "$OUT").replace(str(tmp), "$TMP").replace(str(real), "$DATA").replace(
        str(Path.home()), "~")


def check(case: Case, tmp: Path, real: Path, capsys) -> str:
    if case.bad_input == "framework not installed" and MISSING_FRAMEWORK is None:
        pytest.skip("every framework is installed here: nothing to show")
    if case.bad_input.startswith("--device cuda") and installed("torch") and __import__("torch").cuda.is_available():
        pytest.skip("a GPU is present: nothing to show")
    code = main(case.argv(tmp, real))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1, err
    assert case.expect in err[0] and (case.fix in err[0] or case.fix in shown(err[0], tmp, real)), err[0]
    assert not list(tmp.glob("out/*/runs/*")), "nothing is written for bad input"
    if case.bad_input == "results folder not writable":
        assert (tmp / "a-file").read_text() == "keep me"
    if case.bad_input == "a study's folder that is a file":
        assert (tmp / "blocked" / "digits").read_text() == "keep me"
    return shown(err[0], tmp, real)


@pytest.fixture
def no_cache(tmp_path, monkeypatch):
    """No dataset in a user cache: a missing file is missing."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


@pytest.mark.parametrize("case", CASES, ids=[c.bad_input for c in CASES])
def test_bad_input(case, tmp_path, real_data_dir, capsys, no_cache):
    MESSAGES[case.bad_input] = check(case, tmp_path, real_data_dir, capsys)


DISK_FULL = """set -e
mount -t tmpfs -o size=16m tmpfs "$FULL"
cp -a "$BEFORE/." "$FULL/"
dd if=/dev/zero of="$FULL/filler" bs=64k 2>/dev/null || true   # fill the disk
set +e
"$PY" -m bench.cli run "$STUDY" --frameworks torch --out "$FULL" 2>"$TMP/err1"; echo $? > "$TMP/rc1"
cp -a "$FULL/." "$TMP/after-full/"
rm "$FULL/filler"
"$PY" -m bench.cli run "$STUDY" --frameworks torch --out "$FULL" 2>"$TMP/err2"; echo $? > "$TMP/rc2"
cp -a "$FULL/." "$TMP/after-freed/"
"""
SWEEP = """name = "sweep"
dataset = "digits"
model = "mlp"
epochs = 2
batch_size = 32
lr = 0.05
[grid]
lr = {lrs}
"""


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "filler"}


def test_disk_full_loses_nothing_and_resumes(tmp_path, real_data_dir):
    """A real full disk: a tmpfs mounted in a private mount namespace, filled to the last page."""
    (tmp_path / "small.toml").write_text(SWEEP.format(lrs="[0.2, 0.1]"))
    (tmp_path / "study.toml").write_text(SWEEP.format(lrs="[0.2, 0.1, 0.05]"))
    subprocess.run([sys.executable, "-m", "bench.cli", "run", str(tmp_path / "small.toml"), "--frameworks", "torch",
                    "--out", str(tmp_path / "before"), "--no-plot"], check=True, capture_output=True)
    for d in ("full", "after-full", "after-freed"):
        (tmp_path / d).mkdir()
    env = {**os.environ, "FULL": str(tmp_path / "full"), "BEFORE": str(tmp_path / "before"), "TMP": str(tmp_path),
           "PY": sys.executable, "STUDY": str(tmp_path / "study.toml")}
    subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", DISK_FULL], env=env, check=True)

    err = (tmp_path / "err1").read_text().strip().splitlines()
    assert (tmp_path / "rc1").read_text().strip() == "2", err
    # the disk fills when the folder's record grows to 3 lrs, or when the new run is written: one error line either way
    assert "1 of 3 runs to do" in err[0] or len(err) == 1, err
    last = [line for line in err if line.startswith("bench: error")]
    assert len(last) == 1 and last[0] == err[-1], err
    assert "No space left on device" in last[0] and "run the same command again" in last[0]
    before, after = files(tmp_path / "before"), files(tmp_path / "after-full")
    assert {k: v for k, v in after.items() if k in before} == before  # every byte written before is intact
    assert set(after) <= set(before)  # and no half-written file (nor the lock) is left beside them
    MESSAGES["disk full"] = shown(last[0], tmp_path / "full", real_data_dir).replace("$TMP", "$OUT")

    assert (tmp_path / "rc2").read_text().strip() == "0", (tmp_path / "err2").read_text()
    assert len(list((tmp_path / "after-freed" / "sweep" / "runs").glob("*.json"))) == 3


READ_ONLY = """set -e
mount --bind "$RO/sweep" "$RO/sweep" && mount -o remount,bind,ro "$RO/sweep"
set +e
"$PY" -m bench.cli run "$STUDY" --frameworks torch --out "$RO" 2>"$TMP/err1"; echo $? > "$TMP/rc1"
set -e
mount --bind "$RO" "$RO" && mount -o remount,bind,ro "$RO"
set +e
"$PY" -m bench.cli report "$RO" 2>"$TMP/err2"; echo $? > "$TMP/rc2"
"""
SPECIAL = {  # bad inputs tested outside CASES -> the command docs/errors.md shows
    "disk full": "`bench run STUDY --out $OUT` on a disk that fills up",
    "a study's folder read-only": "`bench run STUDY --out $OUT` where `$OUT/STUDY` is read-only",
    "report on a read-only folder": "`bench report $OUT` where `$OUT` is read-only",
}


def test_a_read_only_folder_is_one_line_before_any_run(tmp_path, real_data_dir):
    """A read-only study folder once trained a run first, then said "Permission denied: free space"; a report on
    one gave a PermissionError traceback. A read-only bind mount in a private namespace: even root cannot write."""
    (tmp_path / "small.toml").write_text(SWEEP.format(lrs="[0.2, 0.1]"))
    (tmp_path / "study.toml").write_text(SWEEP.format(lrs="[0.2, 0.1, 0.05]"))
    subprocess.run([sys.executable, "-m", "bench.cli", "run", str(tmp_path / "small.toml"), "--frameworks", "torch",
                    "--out", str(tmp_path / "ro"), "--no-plot"], check=True, capture_output=True)
    before = files(tmp_path / "ro")
    env = {**os.environ, "RO": str(tmp_path / "ro"), "TMP": str(tmp_path), "PY": sys.executable,
           "STUDY": str(tmp_path / "study.toml")}
    subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", READ_ONLY], env=env, check=True)
    for n, said in ((1, "a study's folder read-only"), (2, "report on a read-only folder")):
        err = (tmp_path / f"err{n}").read_text().strip().splitlines()
        assert (tmp_path / f"rc{n}").read_text().strip() == "2", err
        assert len(err) == 1 and "permission denied" in err[0] and "writable" in err[0], err
        MESSAGES[said] = shown(err[0], tmp_path / "ro", real_data_dir).replace("$TMP", "$OUT")
    assert files(tmp_path / "ro") == before  # nothing trained, nothing written


def table() -> str:
    commands = {c.bad_input: c.shown_command() for c in CASES} | SPECIAL
    lines = ["| bad input | command | message (exit code 2) |", "|---|---|---|"]
    for bad_input, command in commands.items():
        lines.append(f"| {bad_input} | {command} | `` {MESSAGES[bad_input].replace('|', '/')} `` |")
    return "\n".join(lines)


def test_readme_table_shows_these_messages():
    """Runs last in this file: the table in docs/errors.md is the messages the tests above got."""
    missing = [name for name in [*(c.bad_input for c in CASES), *SPECIAL] if name not in MESSAGES]
    if missing:
        pytest.skip(f"not shown in this run: {', '.join(missing)}")
    text = ERRORS_PAGE.read_text()
    start, end = text.index(START) + len(START), text.index(END)
    expected = "\n" + table() + "\n"
    if os.environ.get("BENCH_UPDATE_DOCS") == "1":
        ERRORS_PAGE.write_text(text[:start] + expected + text[end:])
        return
    assert text[start:end] == expected, "docs/errors.md's table is stale: BENCH_UPDATE_DOCS=1 to rewrite it"
