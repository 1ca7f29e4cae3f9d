"""The report's answers carry their evidence: what ran, identical configs, protocols, skipped studies,
quick runs, and an HTML page that reads like one. Each case gave a confident wrong answer before."""

import html.parser
import json
import re
from pathlib import Path

import pandas as pd

from bench.answers import answer
from bench.configs import fold_identical, identical_groups
from bench.ran import banner, cannot_answer, what_ran
from bench.report import SKIPPED, per_run, write_report
from bench.results import COLUMNS, MANIFEST_COLUMNS, ROWS, read_manifests
from bench.spec import load_study

RESULTS = Path(__file__).resolve().parents[1] / "results"


def test_what_ran_comes_from_the_manifests_and_a_banner_says_where_it_is_not_the_study():
    """The committed lr-sweep trained 10 of the study's 100 epochs: the report must say 10, not 100."""
    manifest = read_manifests(RESULTS / "lr-sweep-10-epochs")
    ran = what_ran(manifest, quick=False)
    assert ran.epochs == [10] and ran.train == [60000] and ran.val == [10000] and ran.seeds == list(range(10))
    assert "10 epochs where it says 100" in banner(ran, load_study("lr-sweep"))
    full = what_ran(manifest.assign(epochs=100), quick=False)
    assert banner(full, load_study("lr-sweep")) is None


def test_one_framework_or_seed_says_what_it_cannot_answer():
    ran = what_ran(read_manifests(RESULTS / "schedules").query("framework == 'torch' and seed == 0"), quick=True)
    lines = cannot_answer(ran, "schedules", "--quick")
    assert len(lines) == 2 and "--frameworks torch,keras,paddle,jax" in lines[0] and "--seeds 3" in lines[1]
    assert "smoke test" in ran.text()


def _rows(configs: dict[str, tuple], epochs=6, seeds=(0,)):
    """Rows of runs: config name -> (lr per epoch, train loss per epoch)."""
    rows, manifest = [], []
    for schedule, (lrs, losses) in configs.items():
        for seed in seeds:
            for fw in ("torch", "keras"):
                run_id = f"{schedule}-{fw}-{seed}"
                base = {"run_id": run_id, "study": "s", "framework": fw, "framework_version": "1", "device": "cpu",
                        "model": "lenet", "dataset": "mnist", "optimizer": "sgd", "schedule": schedule, "lr": 0.3,
                        "batch_size": 128, "seed": seed, "init": "torch", "protocol": "fresh", "step": None}
                for e in range(1, epochs + 1):
                    for split, metric, value in (("train", "lr", lrs[e - 1]), ("train", "loss", losses[e - 1]),
                                                 ("train", "accuracy", 0.5), ("val", "loss", losses[e - 1] + 0.1),
                                                 ("val", "accuracy", 0.5 + e / 100), ("train", "epoch_seconds", 1.0)):
                        rows.append({**base, "epoch": e, "split": split, "metric": metric, "value": value})
                manifest.append({**dict.fromkeys(MANIFEST_COLUMNS, ""), **{k: base[k] for k in base if k in MANIFEST_COLUMNS},
                                 "status": "done", "epochs": epochs, "epochs_done": epochs,
                                 "spec": json.dumps({"dataset": "mnist", "train_size": 5000, "val_size": 1000})})
    return pd.DataFrame(rows, columns=COLUMNS), pd.DataFrame(manifest, columns=MANIFEST_COLUMNS)


LOSS = [2.0, 1.5, 1.2, 1.0, 0.9, 0.85]


def test_identical_configs_are_found_and_folded():
    """Multi-step whose milestones lie past epoch 6 is constant; cosine, with its own lrs, is not."""
    # Keras reports the constant lr in float32 (0.300000011921), its multi-step schedule as 0.3
    df, _ = _rows({"constant": ([0.300000011921] * 6, LOSS), "multistep(milestones=15|30)": ([0.3] * 6, LOSS),
                   "cosine": ([0.3, 0.25, 0.2, 0.1, 0.05, 0.01], LOSS)})
    assert identical_groups(df) == [["constant", "multistep(milestones=15|30)"]]
    folded, _ = fold_identical(df)
    assert sorted(folded["schedule"].unique()) == ["constant", "cosine"]
    # the same lrs but other losses (a per-step schedule inside the epochs): not the same run
    other = _rows({"constant": ([0.3] * 6, LOSS), "warmup": ([0.3] * 6, [x + 0.1 for x in LOSS])})[0]
    assert identical_groups(other) == []


def test_the_report_ranks_identical_configs_once(tmp_path):
    df, manifest = _rows({"constant": ([0.3] * 6, LOSS), "multistep(milestones=15|30)": ([0.3] * 6, LOSS)})
    (tmp_path / "s").mkdir()
    df.to_csv(tmp_path / "s" / "results.csv", index=False)
    manifest.to_csv(tmp_path / "s" / "manifest.csv", index=False)
    text = write_report(tmp_path).read_text()
    assert "constant = multistep(milestones=15|30): the same run here" in text
    ranking = text.split("Best config by final val accuracy")[1].split("\n\n")[1]
    assert "| constant = multistep(milestones=15\\|30) |" in ranking or "| constant = multistep" in ranking  # one entry
    assert "| constant |" not in text and "| multistep(milestones=15\\|30) |" not in text


def test_claims_see_every_config_even_when_folded(tmp_path):
    """A claim names multi-step as its study does: folding it into constant for the rankings must not hide it."""
    from tests.test_trust import folder_with, study_file

    study = study_file(tmp_path, text=_two_schedules())
    store, _ = folder_with(tmp_path, study, [(s, "done", 1.0) for s in study.runs(["torch"])])
    text = write_report(store.dir.parent).read_text()
    assert "the same run here" in text  # folded for the ranking...
    claims = text.split("### Claims")[1]
    assert "| multistep climbs |" in claims and "no runs match" not in claims  # ...and still evaluated


def _two_schedules():
    """test_trust's study, its lr grid replaced by two schedules that are one run within its 2 epochs."""
    from tests.test_trust import STUDY

    return STUDY.split("[grid]")[0] + '''[[grid.schedule]]
name = "constant"
[[grid.schedule]]
name = "multistep"
milestones = [15, 30]
[[claims]]
text = "multistep climbs"
check = 'climbs("val.loss", schedule="multistep")'
source = "lrbench"
margin = 0.01
'''


def test_protocols_are_kept_apart_in_the_rows_and_the_report():
    rows = pd.read_csv(RESULTS / "lr-sweep-10-epochs" / ROWS)
    assert set(rows["protocol"]) == {"fresh", "warm_start"}  # a pivot or hue= can tell them apart
    keys = [c for c in COLUMNS if c not in ("run_id", "value", "framework_version", "device")]
    assert not rows.duplicated(keys).any()
    text = (RESULTS / "report.md").read_text()
    fresh = text.split("### lr-sweep-10-epochs, fresh protocol")[1].split("###")[0]
    assert "warm_start" not in fresh.split("Framework against torch")[1]  # a protocol's comparisons are its own
    assert "### lr-sweep-10-epochs, warm_start protocol" in text
    front = text.split("## The answers")[1].split("## Details")[0]
    assert "| **lr-sweep-10-epochs, fresh protocol**: 10 of the study's 100 epochs, 10 seeds × 4 frameworks |" in front
    assert "| lr-sweep-10-epochs, fresh protocol | 10 of the study's 100 epochs, 10 seeds × 4 frameworks |" in front


def test_a_framework_that_ran_fewer_seeds_is_named_with_its_count():
    """JAX added to a folder later, with fewer seeds so far: "10 seeds × 4 frameworks" would overstate it."""
    manifest = read_manifests(RESULTS / "lr-sweep-10-epochs")
    ran = what_ran(manifest[(manifest["framework"] != "jax") | (manifest["seed"] < 3)], quick=False)
    assert ran.seeds_words() == "4 frameworks: 10 seeds in torch, keras and paddle, 3 in jax"
    assert ran.text().endswith("frameworks torch, keras, paddle, jax; jax ran 3 seeds (0, 1, 2); full size.")
    assert "4 frameworks: 10 seeds in torch, keras and paddle, 3 in jax, full size" in ran.short()
    same = what_ran(manifest[manifest["seed"] < 3], quick=False)
    assert same.seeds_words() == "3 seeds × 4 frameworks" and "; jax ran" not in same.text()


def test_a_seed_whose_configs_have_not_all_run_is_named_partly_run():
    """A sweep stopped mid-seed: the seed counts, and the first page says it is partial."""
    manifest = read_manifests(RESULTS / "lr-sweep-10-epochs")
    cut = manifest[(manifest["seed"] < 3) & ~((manifest["framework"] == "keras") & (manifest["seed"] == 2)
                                              & (manifest["lr"] == 0.1))]
    assert what_ran(cut, quick=False).seeds_words() == "3 seeds × 4 frameworks (keras's seed 2 partly run)"
    assert what_ran(manifest[manifest["seed"] < 3], quick=False).partial == {}
    behind = manifest[(manifest["seed"] < 2) & ~((manifest["framework"] == "jax") & (manifest["lr"] == 0.1))]
    assert what_ran(behind, quick=False).partial == {"jax": [0, 1]}, "every seed of a framework behind the others"
    unseeded = manifest[manifest["seed"] < 3].astype({"seed": float})
    unseeded.loc[unseeded["framework"] == "jax", "seed"] = float("nan")  # rows written without a seed: counted, not fatal
    assert what_ran(unseeded, quick=False).framework_seeds["jax"] == []


def test_skipped_studies_are_listed_with_their_fix(tmp_path):
    df, manifest = _rows({"constant": ([0.3] * 6, LOSS)})
    (tmp_path / "s").mkdir()
    df.to_csv(tmp_path / "s" / "results.csv", index=False)
    manifest.to_csv(tmp_path / "s" / "manifest.csv", index=False)
    pd.DataFrame([{"study": "signs", "reason": "signs/train_signs.h5 is missing: put it in /data/signs/"}]).to_csv(
        tmp_path / SKIPPED, index=False)
    text = write_report(tmp_path).read_text()
    front = text.split("## Details")[0]
    assert "### Studies not run here" in front and "- signs: signs/train_signs.h5 is missing: put it in /data/signs/" in front
    assert "- step-decay: not in this folder; it needs its data, `cifar-10/cifar-10-python.tar.gz`" in front
    assert "nan" not in front


def test_a_quick_run_does_not_evaluate_claims(tmp_path):
    from tests.test_trust import folder_with, study_file

    study = study_file(tmp_path)
    fast, slow = study.runs(["torch"])
    store, _ = folder_with(tmp_path, study, [(fast, "done", 1.0), (slow, "done", 0.5)], options="--quick --device auto")
    text = write_report(store.dir.parent).read_text()
    assert "not evaluated at quick size" in text and "| held " not in text
    assert "quick preset: a smoke test" in text and "torch: 0 held, 0 not held, 0 cannot tell, 1 not evaluated" in text
    front = text.split("## Details")[0]
    assert "No full-size study ran here" in front and "| mine |" not in front  # a smoke test answers nothing
    assert "- mine (2 epochs, " in front and "quick (smoke test)): all 2 runs trained." in front


class _Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.links, self.verdicts, self.text, self.h2 = set(), [], [], [], []
        self._in_h2 = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a":
            self.links.append(attrs["href"])
        if tag == "span" and "v" in attrs.get("class", "").split():
            self.verdicts.append(attrs["class"])
        self._in_h2 = tag == "h2"

    def handle_data(self, data):
        self.text.append(data)
        if self._in_h2:
            self.h2.append(data)
            self._in_h2 = False


def check_page(text: str, verdicts=("v good", "v bad", "v unsure")) -> None:
    """report.html: the answers first, a contents list that resolves, verdicts coloured, no markdown left, numbers rounded."""
    page = _Page()
    page.feed(text)
    assert page.h2[0] == "The answers"  # the answers first
    internal = [link for link in page.links if link.startswith("#")]
    assert internal and all(link[1:] in page.ids for link in internal)  # the contents list resolves
    assert not re.search(r"`|\*\w", "".join(page.text))  # markdown's code, bold and italics became HTML
    assert set(page.verdicts) == set(verdicts)  # held / agree, not held / differ, cannot tell: each coloured
    numbers = re.findall(r"\d+\.\d+", " ".join(page.text))
    digits = [len(re.sub(r"^[0.]+", "", n).replace(".", "")) for n in numbers]
    assert max(digits) <= 6, max(zip(digits, numbers))  # significant digits, rounded as in report.md (no float dumps)


def test_the_html_report_reads_like_a_page(tmp_path):
    from tests.test_report import synthetic

    df, manifest = synthetic(offset=0.02)
    (tmp_path / "s").mkdir()
    df.to_csv(tmp_path / "s" / "results.csv", index=False)
    manifest.to_csv(tmp_path / "s" / "manifest.csv", index=False)
    write_report(tmp_path)
    text = (tmp_path / "report.html").read_text()
    check_page(text, ("v good", "v bad"))
    assert '<span class="v bad">differs</span>' in text  # keras - torch at lr 0.1, 0.02 over 5 seeds


def test_one_seed_says_no_word_however_far_apart_the_winners():
    """A quick run, 1 seed: torch's best is a, keras's is b, far beyond the margin. The old rule said "same winner: no"."""
    df, manifest = _rows({"constant": ([0.3] * 6, LOSS), "cosine": ([0.3, 0.25, 0.2, 0.1, 0.05, 0.01], LOSS)})
    df.loc[(df["framework"] == "keras") & (df["schedule"] == "cosine") & (df["metric"] == "accuracy")
           & (df["split"] == "val"), "value"] += 0.2
    df.loc[(df["framework"] == "torch") & (df["schedule"] == "constant") & (df["metric"] == "accuracy")
           & (df["split"] == "val"), "value"] += 0.2
    a = answer(per_run(df, manifest), "val.accuracy", {"val.accuracy": 0.005}, "torch")
    assert a.by_framework["torch"].best != a.by_framework["keras"].best
    assert a.same_winner()[0] == "cannot tell" and "no" not in a.shifts_text()
    assert a.use().startswith("Best mean:") and "too few to recommend it" in a.use()


def test_a_pipe_inside_a_cell_does_not_split_a_markdown_row(tmp_path):
    """`milestones=15|30` split the flagship schedules row on GitHub and shifted its verdict one column."""
    df, manifest = _rows({"constant": ([0.3] * 6, LOSS), "multistep(milestones=15|30)": ([0.3] * 6, [x + 0.01 for x in LOSS])},
                         seeds=(0, 1, 2))
    (tmp_path / "s").mkdir()
    df.to_csv(tmp_path / "s" / "results.csv", index=False)
    manifest.to_csv(tmp_path / "s" / "manifest.csv", index=False)
    text = write_report(tmp_path).read_text()
    tables = [block for block in text.split("\n\n") if block.startswith("| ")]
    assert any("15\\|30" in t for t in tables)
    for table in tables:
        widths = {len(re.findall(r"(?<!\\)\|", line)) for line in table.splitlines()}
        assert len(widths) == 1, table  # every row has as many cells as the header


def test_the_commands_that_would_decide_parse_and_name_every_framework_of_their_folder():
    """A command that adds seeds without --frameworks would run torch, keras and paddle only, never the folder's JAX."""
    import shlex

    from bench.cli import _parser
    from bench.results import read_manifests

    front = (RESULTS / "report.md").read_text().split("## Details")[0]
    commands = re.findall(r"To decide: `(bench run [^`]+)`", front)
    assert commands
    for command in commands:
        args = _parser().parse_args(shlex.split(command)[1:])
        folder = RESULTS / next(p.name for p in RESULTS.iterdir() if (p / "study.json").exists()
                                and json.loads((p / "study.json").read_text())["study"] == args.study
                                and ("--protocol warm_start" in command) == p.name.endswith("warm_start"))
        assert set(args.frameworks.split(",")) == set(read_manifests(folder)["framework"]), command
        assert str(args.out) == "results" and args.seeds >= 3
