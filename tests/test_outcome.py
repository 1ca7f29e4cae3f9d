"""A run that ends at chance is collapsed, by one rule for the runner and the report; claims judged by their own
tolerance at any seed count; the originals' conclusions on the first page."""

import re

import numpy as np
import pandas as pd
import pytest

from bench.claims import evaluate_claims
from bench.data import CLASSES
from bench.outcome import at_chance, flag_at_chance
from bench.report import StudyFolder, write_report
from tests.test_report import synthetic


@pytest.mark.parametrize("classes_predicted, accuracy, classes, epochs, expected", [
    (2, 0.1839, 10, 30, True),   # the committed one-cycle run in Paddle at the 0.175 peak
    (1, 0.1003, 10, 30, True),
    (2, 0.2001, 10, 30, False),  # beyond 10 points of chance
    (3, 0.12, 10, 30, False),    # three classes: not this rule (one class for collapse_epochs is the other)
    (2, 0.55, 2, 30, False),     # a binary task: two classes is every class
    (2, 0.26, 6, 30, True),      # SIGNS: chance 1/6
    (1, 0.1, 10, 2, False),      # two epochs: a smoke test, too short to call
])
def test_at_chance(classes_predicted, accuracy, classes, epochs, expected):
    assert at_chance(classes_predicted, accuracy, classes, epochs) is expected


def _one_run_at(accuracy: float, classes_predicted: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    df, manifest = synthetic(offset=0.0, lrs=(0.1,), seeds=1)
    last = (df["run_id"] == "keras-0.1-0") & (df["epoch"] == df["epoch"].max()) & (df["split"] == "val")
    df.loc[last & (df["metric"] == "accuracy"), "value"] = accuracy
    predicted = df[last & (df["metric"] == "accuracy")].assign(metric="classes_predicted", value=classes_predicted)
    others = df[(df["split"] == "val") & (df["metric"] == "accuracy") & ~last].assign(metric="classes_predicted", value=10)
    return pd.concat([df, predicted, others], ignore_index=True), manifest


def test_the_report_flags_a_done_run_that_ends_at_chance_as_collapsed():
    df, manifest = _one_run_at(0.1839, 2)
    flagged = flag_at_chance(manifest, df, CLASSES).set_index("run_id")
    assert flagged.loc["keras-0.1-0", "status"] == "collapsed"
    assert flagged.loc["keras-0.1-0", "error"].startswith("ends at chance: predicts 2 of 10 classes, val accuracy 0.1839")
    assert flagged.loc["torch-0.1-0", "status"] == "done"
    df, manifest = _one_run_at(0.25, 2)  # two classes but well above chance: trained, if poorly
    assert (flag_at_chance(manifest, df, CLASSES)["status"] == "done").all()


def test_a_committed_run_at_chance_reads_as_collapsed_in_a_folder(tmp_path):
    df, manifest = _one_run_at(0.1003, 2)
    folder = tmp_path / "s"
    folder.mkdir()
    df.to_csv(folder / "results.csv.gz", index=False)
    manifest.to_csv(folder / "manifest.csv", index=False)
    runs = StudyFolder.read(folder).runs.set_index("run_id")
    assert runs.loc["keras-0.1-0", "status"] == "collapsed" and runs.loc["torch-0.1-0", "status"] == "done"


def _claims(claims, seeds=1):
    df, manifest = synthetic(offset=0.0, lrs=(0.1, 0.01), seeds=seeds)
    return evaluate_claims(claims, df, manifest)


def test_a_claim_against_its_own_threshold_is_judged_at_one_seed_with_its_n_shown():
    """"moves less than 2 points" states its own tolerance: one seed decides it (the 1-seed rule is for comparisons
    between configs, whose margin is the seed spread)."""
    spread = 'max_("val.accuracy", lr=0.1) - min_("val.accuracy", lr=0.1)'
    table = _claims([{"text": "flat", "source": "seed", "check": f"{spread} < 0.02"},
                     {"text": "moves", "source": "seed", "check": f"{spread} > 0.02"},
                     {"text": "ranked", "source": "seed",
                      "check": 'final("val.accuracy", lr=0.1) > final("val.accuracy", lr=0.01)'}])
    verdicts = table.groupby("claim")["verdict"].first()
    assert verdicts["flat"] == "not held" and verdicts["moves"] == "held"  # it moves 0.3 over the run
    assert verdicts["ranked"].startswith("cannot tell: ") and "1 seed" in verdicts["ranked"]
    assert set(table["seeds"]) == {1}


def test_mean_change_measures_smoothness_and_an_untested_claim_says_why():
    df, manifest = synthetic(offset=0.0, lrs=(0.1, 0.01), seeds=3)
    jumpy = (df["lr"] == 0.01) & (df["metric"] == "loss") & (df["split"] == "val")
    df.loc[jumpy, "value"] += np.where(df.loc[jumpy, "epoch"] % 2 == 0, 0.5, 0.0)  # down 0.3 an epoch, +-0.5 on top
    claims = [{"text": "smoother", "source": "seed", "margin": 0.05,
               "check": 'mean_change("val.loss", lr=0.1) < mean_change("val.loss", lr=0.01)'},
              {"text": "beyond", "source": "seed", "check": 'final("val.loss", lr=0.1) < final("val.loss", lr=0.01)',
               "untested": "the study's lrs stop at 0.1"}]
    table = evaluate_claims(claims, df, manifest).groupby("claim").first()
    assert table.loc["smoother", "verdict"] == "held"  # 0.3 against a mean |change| of (0.2 + 0.8 + 0.2) / 3 = 0.4
    assert "mean_change('val.loss', lr=0.1) = 0.3" in table.loc["smoother", "numbers"]
    assert table.loc["beyond", "verdict"] == "cannot tell: the study's lrs stop at 0.1"
    assert "final('val.loss', lr=0.1)" in table.loc["beyond", "numbers"]  # its numbers shown all the same


def _write(folder, df, manifest, study="lr-sweep"):
    folder.mkdir(parents=True)
    df.assign(study=study).to_csv(folder / "results.csv.gz", index=False)
    manifest.assign(study=study).to_csv(folder / "manifest.csv", index=False)


def test_the_first_page_says_when_the_protocol_changes_the_config_to_use(tmp_path):
    """lr 0.1 best from a fresh start, lr 0.01 best continuing one network: the first page says so in words, and each
    original claim once per protocol, with its seeds."""
    fresh, m_fresh = synthetic(offset=0.0, lrs=(0.1, 0.01), seeds=3)
    warm, m_warm = synthetic(offset=0.0, lrs=(0.1, 0.01), seeds=3)
    best = (fresh["lr"] == 0.1) & (fresh["metric"] == "accuracy") & (fresh["split"] == "val")
    fresh.loc[best, "value"] += 0.05 + 0.002 * fresh.loc[best, "seed"]
    warm = warm.assign(run_id="w" + warm["run_id"], protocol="warm_start")
    up = (warm["lr"] == 0.01) & (warm["metric"] == "accuracy") & (warm["split"] == "val")
    warm.loc[up, "value"] += 0.05 + 0.002 * warm.loc[up, "seed"]
    m_warm = m_warm.assign(run_id="w" + m_warm["run_id"], protocol="warm_start")
    df, manifest = pd.concat([fresh, warm], ignore_index=True), pd.concat([m_fresh, m_warm], ignore_index=True)
    df["dataset"], manifest["dataset"] = "mnist", "mnist"
    _write(tmp_path / "lr-sweep-4-epochs", df, manifest)
    text = write_report(tmp_path, replot=False).read_text()
    originals = text.split("### What the originals concluded, tested here", 1)[1].split("\n### ", 1)[0]
    said = originals.split("**lr-sweep**:", 1)[1].split("\n\n**", 1)[0]
    assert "**The protocol changes which config to use**: fresh (every lr from the same initial weights): lr=0.1" in said
    assert "warm start (one network trained at each lr in turn, never rebuilt): lr=0.01" in said
    assert "- lr 0.1 is the worst, especially early (the original's words): the lowest train accuracy in the first " \
           "epoch: fresh, 4 epochs: **" in said and "; warm_start, 4 epochs: **" in said and "(3 seeds" in said
    # the bundled studies with no folder here: their originals' claims, untested, and why
    assert re.search(r"<summary>The originals not run here \([^)]*\bsigns\b[^)]*\)", originals)
    assert "**signs**, untested here:\n\n- Adam at lr 1 collapses" in originals
