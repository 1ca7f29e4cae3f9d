"""Trust, end to end on torch: resume repairs a damaged folder, SIGTERM/SIGHUP stop like Ctrl-C,
a folder refuses another experiment, runs a framework cannot do are refused before the sweep."""

import os
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from bench.cli import main
from bench.results import ROWS

from .test_torch import deterministic, sweep

pytestmark = pytest.mark.env_torch  # the tox envs that run this file (see tests/conftest.py)

STUDY = """name = "repair"
dataset = "digits"
model = "mlp"
epochs = 2
batch_size = 32
lr = 0.05
log_every = 20
[grid]
lr = [0.1, 0.05]
"""


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """The study run once, cleanly: the rows every repaired folder must end with."""
    root = tmp_path_factory.mktemp("clean")
    (root / "repair.toml").write_text(STUDY)
    assert main(["run", str(root / "repair.toml"), "--frameworks", "torch", "--out", str(root / "out"), "--no-plot"]) == 0
    return root


def one_run(folder, suffix):
    return sorted((folder / "runs").glob(f"*{suffix}"))[0]


def cut_mid_line(folder):
    path = one_run(folder, ".csv")
    path.write_bytes(path.read_bytes()[:-7])


def cut_at_a_line_end(folder):
    path = one_run(folder, ".csv")
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[: len(lines) // 2]))


DAMAGES = {
    "run CSV cut mid-line": cut_mid_line,
    "run CSV cut at a line end": cut_at_a_line_end,
    "run CSV deleted": lambda folder: one_run(folder, ".csv").unlink(),
    "run manifest deleted": lambda folder: one_run(folder, ".json").unlink(),
    "run manifest emptied": lambda folder: one_run(folder, ".json").write_text(""),
    "garbage in manifest.csv": lambda folder: (folder / "manifest.csv").write_bytes(b"\x00garbage,\n\"unclosed"),
    "garbage in the combined rows": lambda folder: (folder / ROWS).write_text("run_id,x\n1,2,3,4\n\"open"),
}


@pytest.mark.parametrize("damage", DAMAGES, ids=list(DAMAGES))
def test_resume_repairs_a_damaged_folder(clean, tmp_path, capsys, damage):
    shutil.copytree(clean / "out", tmp_path / "out")
    folder = tmp_path / "out" / "repair"
    DAMAGES[damage](folder)
    assert main(["run", str(clean / "repair.toml"), "--frameworks", "torch", "--out", str(tmp_path / "out"), "--no-plot"]) == 0
    repaired, expected = deterministic(folder / ROWS), deterministic(clean / "out" / "repair" / ROWS)
    assert not repaired.duplicated().any()
    pd.testing.assert_frame_equal(repaired, expected)
    manifest = pd.read_csv(folder / "manifest.csv")
    assert len(manifest) == 2 and set(manifest["status"]) == {"done"}
    err = capsys.readouterr().err
    if damage.startswith("run C") or damage == "run manifest emptied":
        assert "is damaged" in err and "runs again" in err  # named, not silently skipped
    assert main(["report", str(tmp_path / "out")]) == 0


def alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    out = subprocess.run(["ps", "-o", "stat=", "-g", str(group)], capture_output=True, text=True).stdout.split()
    return any(not s.startswith("Z") for s in out)  # zombies are already dead


def as_in_a_terminal() -> None:
    """Ctrl-C as a terminal delivers it: a shell running this test in the background (CI) ignores SIGINT in
    everything it starts, and Python then never turns SIGINT into KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


STOPS = {"SIGTERM": (signal.SIGTERM, False), "SIGHUP": (signal.SIGHUP, False), "Ctrl-C": (signal.SIGINT, True)}


@pytest.mark.parametrize("executor", ["local", "ray"])
@pytest.mark.parametrize("stop", STOPS)
def test_a_stop_signal_stops_the_workers_and_keeps_finished_runs(tmp_path, stop, executor):
    """Ctrl-C reaches every process of the terminal's group: a run process once printed its own
    KeyboardInterrupt (or EOFError) traceback after the driver's stop line. Under Ray, SIGTERM once
    exited 1 with Ray's C++ stack dump, and Ctrl-C gave a helper's KeyboardInterrupt traceback."""
    signum, to_group = STOPS[stop]
    study = tmp_path / "long.toml"
    study.write_text(STUDY.replace("epochs = 2", "epochs = 100").replace("lr = [0.1, 0.05]", "lr = [0.1, 0.05, 0.02]"))
    folder = tmp_path / "out" / "repair"
    driver = sweep(study, tmp_path / "out", "--executor", executor, "--threads", "1", preexec_fn=as_in_a_terminal)
    deadline = time.time() + 240
    while not list(folder.glob("runs/*.json")) and driver.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # the next runs are training
    if to_group:
        os.killpg(driver.pid, signum)  # as a terminal does (the driver leads its own session here)
    else:
        driver.send_signal(signum)  # to the driver alone, as `kill PID` does
    _, err = driver.communicate(timeout=60)
    assert driver.returncode == 128 + signum, err
    assert err.strip().splitlines()[-1].startswith(f"bench: stopped by {signal.Signals(signum).name}"), err
    for noise in ("Traceback", "BrokenPipeError", "KeyboardInterrupt", "received at time"):  # the last: Ray's C++ dump
        assert noise not in err, err
    deadline = time.time() + 10
    while alive(driver.pid) and time.time() < deadline:
        time.sleep(0.1)
    assert not alive(driver.pid), "a run process outlived the driver"
    assert len(pd.read_csv(folder / "manifest.csv")) >= 1  # finished runs kept


def test_a_stopped_range_test_stops_at_once_and_says_nothing_was_written(tmp_path):
    """SIGTERM to `bench find-lr` was once silent for 41 s (the driver waited for the test), then said
    "finished runs are saved", though find-lr writes only when every framework has finished."""
    study = tmp_path / "long.toml"
    study.write_text(STUDY)
    driver = subprocess.Popen([sys.executable, "-m", "bench.cli", "find-lr", str(study), "--frameworks", "torch",
                               "--steps", "100000", "--max-lr", "0.0001", "--out", str(tmp_path / "out")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 120
    while not children(driver.pid) and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(3.0)  # the range test is training
    sent = time.time()
    driver.send_signal(signal.SIGTERM)
    _, err = driver.communicate(timeout=60)
    assert time.time() - sent < 5, err
    assert driver.returncode == 128 + signal.SIGTERM, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("bench: stopped by SIGTERM; nothing was written") and "Traceback" not in err, err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("*.csv"))


def children(pid: int) -> list[str]:
    return subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()


def test_a_folder_refuses_another_experiment_and_keeps_what_it_has(tmp_path, capsys):
    study = tmp_path / "repair.toml"
    study.write_text(STUDY)
    out = str(tmp_path / "out")
    assert main(["run", str(study), "--frameworks", "torch", "--no-plot", "--out", out]) == 0
    before = (tmp_path / "out" / "repair" / ROWS).read_bytes()
    capsys.readouterr()
    assert main(["run", str(study), "--frameworks", "torch", "--no-plot", "--out", out, "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds another definition of repair" in err[0] and "--out OTHER" in err[0]
    # a folder of its own
    assert main(["run", str(study), "--frameworks", "torch", "--no-plot", "--out", out, "--epochs", "1"]) == 0
    assert pd.read_csv(tmp_path / "out" / "repair-1-epochs" / "manifest.csv")["epochs"].tolist() == [1, 1]
    study.write_text(STUDY.replace("batch_size = 32", "batch_size = 16"))  # the same name, another experiment
    assert main(["run", str(study), "--frameworks", "torch", "--no-plot", "--out", out]) == 2
    assert "batch_size 32 there, 16 here" in capsys.readouterr().err
    assert (tmp_path / "out" / "repair" / ROWS).read_bytes() == before
    manifest = pd.read_csv(tmp_path / "out" / "repair" / "manifest.csv")
    assert manifest["lrbench"].str.startswith("0.1.0").all()  # each run says which lrbench made it
    study.write_text(STUDY)
    run = sorted((tmp_path / "out" / "repair" / "runs").glob("*.json"))[0]
    run.write_text(run.read_text().replace(f'"framework_version": "{manifest["framework_version"][0]}"',
                                           '"framework_version": "2.0.0"'))
    capsys.readouterr()
    assert main(["run", str(study), "--frameworks", "torch", "--no-plot", "--out", out]) == 0
    err = capsys.readouterr().err
    assert "note:" in err and "torch runs made with 2.0.0" in err and "0 of 2 runs to do" in err  # said, then reused


def test_duplicates_are_folded_and_impossible_runs_refused_before_the_sweep(tmp_path, capsys):
    study = tmp_path / "twice.toml"
    study.write_text(STUDY.replace("[grid]\nlr = [0.1, 0.05]\n", "[[configs]]\nlr = 0.1\n[[configs]]\nlr = 0.1\n"))
    assert main(["run", str(study), "--frameworks", "torch,torch", "--jobs", "8", "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "--frameworks names torch more than once" in err and "1 runs repeat another config" in err
    assert "1 of 1 runs to do" in err
    manifest = pd.read_csv(tmp_path / "out" / "repair" / "manifest.csv")
    assert manifest["threads"].tolist() == [os.cpu_count()]  # --jobs 8 for one run: one job with every core
    keras_form = tmp_path / "keras_form.toml"
    keras_form.write_text(STUDY + '[optimizer]\nname = "sgd"\nmomentum = 0.9\nmomentum_form = "keras"\n')
    assert main(["run", str(keras_form), "--frameworks", "torch", "--out", str(tmp_path / "out2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "torch cannot run momentum_form keras" in err[0] and "run it with keras" in err[0]
    assert not list((tmp_path / "out2").glob("*/runs/*.json"))
