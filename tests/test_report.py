"""The report's numbers: intervals and verdicts that follow from known differences, claims per framework."""

import numpy as np
import pandas as pd
import pytest

from bench.claims import evaluate_claims, parse_check
from bench.errors import SpecError
from bench.report import bootstrap_difference, difference_table, per_run, write_report
from bench.results import COLUMNS, MANIFEST_COLUMNS

SEEDS = 5


def synthetic(offset: float, lrs=(0.1, 0.01), epochs=4):
    """keras = torch + offset in val accuracy at lr 0.1, equal (up to seed noise) at lr 0.01."""
    rows, manifest = [], []
    rng = np.random.default_rng(0)
    for lr in lrs:
        for seed in range(SEEDS):
            noise = rng.normal(0, 0.002)
            for fw in ("torch", "keras"):
                run_id = f"{fw}-{lr}-{seed}"
                shift = offset if (fw == "keras" and lr == 0.1) else (0.001 if fw == "keras" else 0.0) * (-1) ** seed
                for e in range(1, epochs + 1):
                    base = dict(zip(COLUMNS, [run_id, "s", fw, "1", "cpu", "lenet", "mnist", "sgd", "constant", lr, 64,
                                              seed, e, None, "", "", 0.0]))
                    for split, metric, value in (("val", "accuracy", 0.5 + 0.1 * e + noise + shift),
                                                 ("val", "loss", 2.0 - 0.3 * e), ("train", "loss", 2.1 - 0.3 * e),
                                                 ("train", "accuracy", 0.4 + 0.1 * e), ("train", "lr", lr),
                                                 ("train", "epoch_seconds", 1.0 + (e == 1))):
                        rows.append({**base, "split": split, "metric": metric, "value": value})
                manifest.append({**{c: "" for c in MANIFEST_COLUMNS}, "run_id": run_id, "framework": fw, "status": "done"})
    return pd.DataFrame(rows, columns=COLUMNS), pd.DataFrame(manifest, columns=MANIFEST_COLUMNS)


def test_bootstrap_interval_and_verdict():
    d = bootstrap_difference(np.array([0.020, 0.021, 0.019, 0.022, 0.018]), margin=0.005)
    assert d.mean == pytest.approx(0.02)
    assert 0.018 <= d.low < 0.02 < d.high <= 0.022
    assert d.verdict == "differ"
    assert bootstrap_difference(np.array([0.001, -0.002, 0.0015, -0.001, 0.0005]), 0.005).verdict == "agree"
    # the interval excludes zero, but the difference is below the margin that matters
    assert bootstrap_difference(np.array([0.001, 0.0011, 0.0009]), 0.005).verdict == "agree"


def test_known_framework_difference_is_found_with_its_interval():
    df, manifest = synthetic(offset=0.02)
    runs = per_run(df, manifest)
    table = difference_table(runs).set_index("config")
    differ = table.loc["lr=0.1"]
    mean, interval = differ["Δ final val acc"].split(" ", 1)
    low, high = (float(x) for x in interval.strip("[]").split(", "))
    assert float(mean) == pytest.approx(0.02, abs=1e-9)  # noise is shared by both frameworks within a seed
    assert low <= 0.02 <= high and low > 0
    assert differ["acc verdict"] == "differ" and differ["seeds"] == SEEDS
    assert table.loc["lr=0.01"]["acc verdict"] == "agree"
    assert table.loc["lr=0.1"]["loss verdict"] == "agree"


def test_per_run_numbers():
    df, manifest = synthetic(offset=0.0)
    runs = per_run(df, manifest, target=0.85).set_index("run_id")
    run = runs.loc["torch-0.1-0"]
    assert run["epochs"] == 4 and run["best_epoch"] == 4
    assert run["median_epoch_seconds"] == 1.0 and run["first_epoch_seconds"] == 2.0
    assert run["epochs_to_target"] == 4  # 0.5 + 0.4 + noise >= 0.85 first at epoch 4


CLAIMS = [
    {"text": "lr 0.1 ends higher", "check": 'final("val.accuracy", lr=0.1) > final("val.accuracy", lr=0.01)'},
    {"text": "lr 0.01 lowest at epoch 1", "check": 'lowest("val.accuracy", by="lr", epoch=1) == 0.01'},
    {"text": "all done", "check": 'status(lr=0.1) == "done" and close(at("train.lr", 2, lr=0.1), 0.1)'},
    {"text": "unknown lr", "check": 'final("val.accuracy", lr=0.5) > 0'},
]


def test_claims_are_evaluated_per_framework_with_numbers():
    df, manifest = synthetic(offset=0.02)
    table = evaluate_claims(CLAIMS, df, manifest)
    verdicts = table.set_index(["claim", "framework"])["verdict"]
    assert verdicts["lr 0.1 ends higher", "keras"] == "held"
    assert verdicts["lr 0.1 ends higher", "torch"] == "not held"  # seed noise only: equal up to 0.002
    assert verdicts["lr 0.01 lowest at epoch 1", "keras"] == "held"
    assert verdicts["all done", "torch"] == "held"
    assert verdicts["unknown lr", "torch"].startswith("cannot tell")
    numbers = table.set_index(["claim", "framework"])["numbers"]["lr 0.1 ends higher", "keras"]
    assert "final('val.accuracy', lr=0.1) = " in numbers and "lr=0.01" in numbers


@pytest.mark.parametrize("check,error", [
    ('__import__("os")', "__import__"),
    ('final("val.loss").real', "Attribute"),
    ('[x for x in ()]', "ListComp"),
    ('final("val.loss" >', "not a valid expression"),
])
def test_claims_cannot_run_code(check, error):
    with pytest.raises(SpecError, match=error):
        parse_check(check)


def test_report_files_are_written_from_csvs(tmp_path):
    df, manifest = synthetic(offset=0.02)
    study = tmp_path / "s"
    study.mkdir()
    df.to_csv(study / "results.csv", index=False)
    manifest.to_csv(study / "manifest.csv", index=False)
    md = write_report(tmp_path)
    text = md.read_text()
    assert "keras - torch" in text and "differ" in text
    assert (tmp_path / "report.html").read_text().startswith("<!doctype html>")
    assert write_report(tmp_path).read_text() == text  # deterministic


def test_claims_split_by_protocol_and_per_seed_and_say_their_source():
    df, manifest = synthetic(offset=0.0)
    warm = df.assign(run_id=df["run_id"] + "-warm", value=np.where(df["metric"] == "accuracy", 1.0 - df["value"], df["value"]))
    both = pd.concat([df.assign(protocol="fresh"), warm.assign(protocol="warm_start")], ignore_index=True)
    manifest = pd.concat([manifest, manifest.assign(run_id=manifest["run_id"] + "-warm")], ignore_index=True)
    manifest.loc[manifest["run_id"] == "torch-0.1-2", "status"] = "collapsed"
    claims = [
        {"text": "lr 0.1 ends higher", "source": "seed", "check": CLAIMS[0]["check"]},
        {"text": "lr 0.1 never collapses", "source": "lrbench", "per_seed": True, "check": 'status(lr=0.1) != "collapsed"'},
        {"text": "a fifth collapses", "source": "lrbench", "check": 'close(share("collapsed", lr=0.1), 1 / 5)'},
    ]
    table = evaluate_claims(claims, both, manifest)
    higher = table[table["claim"] == "lr 0.1 ends higher"].set_index(["framework", "protocol"])
    assert set(higher["source"]) == {"seed"}
    # accuracy mirrored in the warm start, so the verdict flips with the protocol
    assert higher.loc[("torch", "fresh"), "verdict"] == "not held"
    assert higher.loc[("torch", "warm_start"), "verdict"] == "held"
    per_seed = table[table["claim"] == "lr 0.1 never collapses"]
    assert len(per_seed) == 2 * 2 * SEEDS  # framework x protocol x seed
    failed = per_seed[per_seed["verdict"] == "not held"]
    assert failed[["framework", "protocol", "seed"]].values.tolist() == [["torch", "fresh", 2]]
    share = table[table["claim"] == "a fifth collapses"].set_index(["framework", "protocol"])["verdict"]
    assert share["torch", "fresh"] == "held" and share["keras", "fresh"] == "not held"


def test_volatility_is_the_spread_of_epoch_to_epoch_changes():
    df, manifest = synthetic(offset=0.0)
    table = evaluate_claims([{"text": "v", "source": "lrbench",
                              "check": 'volatility("val.loss", lr=0.1) < 1e-9 and close(mean_("val.loss", lr=0.1), 1.25)'}],
                            df, manifest)
    assert set(table["verdict"]) == {"held"}  # val loss falls by exactly 0.3 an epoch: no spread; mean of 1.7 .. 0.8
    one_epoch = df[df["epoch"] == 1]
    table = evaluate_claims([{"text": "v", "source": "lrbench", "check": 'volatility("val.loss", lr=0.1) < 1'}],
                            one_epoch, manifest)
    assert all(v.startswith("cannot tell: volatility('val.loss', lr=0.1) is not defined") for v in table["verdict"])


def test_the_originals_numbers_sit_beside_lrbenchs():
    from bench.report import reference_table

    df, _ = synthetic(offset=0.02)
    reference = [{"metric": "val.loss", "epoch": 4, "where": {"lr": 0.1}, "value": 0.85, "tolerance": 0.1},
                 {"metric": "val.accuracy", "epoch": 4, "where": {"lr": 0.01}, "value": 0.5, "tolerance": 0.01},
                 {"metric": "train.loss", "epoch": 1, "step": 7, "value": 1.0, "tolerance": 0.1}]
    table = reference_table(reference, df).set_index("metric")
    assert table.loc["val.loss", "torch"] == "0.8000 (-0.0500, within)"
    assert table.loc["val.accuracy", "keras"].endswith("outside)")  # 0.9 against 0.5
    assert table.loc["train.loss", "torch"] == "not run"  # no step rows in this study
    vague = reference_table([{"metric": "val.loss", "epoch": 4, "value": 0.85, "tolerance": 0.1}], df)
    assert vague.loc[0, "torch"] == "cannot tell: matches 2 configs, add a filter to where"
    assert list(table.columns[:5]) == ["config", "at", "original", "tolerance", "torch"]
