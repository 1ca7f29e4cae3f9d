"""The report's numbers: intervals and verdicts that follow from known differences, claims per framework."""

import numpy as np
import pandas as pd
import pytest

from bench.answers import framework_effect
from bench.claims import evaluate_claims, parse_check
from bench.errors import SpecError
from bench.evidence import interval, paired_verdict, rank
from bench.report import per_run, summary_table, write_report
from bench.results import COLUMNS, MANIFEST_COLUMNS

SEEDS = 5


def synthetic(offset: float, lrs=(0.1, 0.01), epochs=4, seeds=SEEDS):
    """keras = torch + offset in val accuracy at lr 0.1, equal (up to 0.001, below the seed spread) at lr 0.01."""
    rows, manifest = [], []
    rng = np.random.default_rng(0)
    for lr in lrs:
        for seed in range(seeds):
            noise = rng.normal(0, 0.002)
            for fw in ("torch", "keras"):
                run_id = f"{fw}-{lr}-{seed}"
                shift = offset if (fw == "keras" and lr == 0.1) else (0.001 if fw == "keras" else 0.0) * (-1) ** seed
                for e in range(1, epochs + 1):
                    base = {"run_id": run_id, "study": "s", "framework": fw, "framework_version": "1", "device": "cpu",
                            "model": "lenet", "dataset": "mnist", "optimizer": "sgd", "schedule": "constant", "lr": lr,
                            "batch_size": 64, "seed": seed, "init": "torch", "protocol": "fresh", "epoch": e, "step": None}
                    for split, metric, value in (("val", "accuracy", 0.5 + 0.1 * e + noise + shift),
                                                 ("val", "loss", 2.0 - 0.3 * e), ("train", "loss", 2.1 - 0.3 * e),
                                                 ("train", "accuracy", 0.4 + 0.1 * e), ("train", "lr", lr),
                                                 ("train", "epoch_seconds", 1.0 + (e == 1))):
                        rows.append({**base, "split": split, "metric": metric, "value": value})
                manifest.append({**{c: "" for c in MANIFEST_COLUMNS}, "run_id": run_id, "framework": fw, "status": "done",
                                 "seed": seed, "epochs": epochs, "protocol": "fresh", "model": "lenet"})
    return pd.DataFrame(rows, columns=COLUMNS), pd.DataFrame(manifest, columns=MANIFEST_COLUMNS)


def test_t_interval_and_verdicts():
    mean, low, high = interval([0.020, 0.021, 0.019, 0.022, 0.018])
    assert mean == pytest.approx(0.02) and 0.018 < low < 0.02 < high < 0.022
    same = pd.Series([0.90, 0.92, 0.91])
    assert paired_verdict(same + 0.02, same).verdict == "differ"  # beyond the seed spread (0.01), interval off zero
    assert paired_verdict(same + 0.002 * np.array([1, -1, 0.5]), same).verdict == "agree"  # inside the spread
    assert paired_verdict(same + 0.005, same).verdict == "agree"  # a sure difference, inside the seed spread (0.01)
    assert paired_verdict(same + 0.005, same, margin=0.001).verdict == "differ"  # a stated margin decides
    assert paired_verdict(same + np.array([0.005, 0.015, 0.0]), same).verdict == "cannot tell"  # interval past the spread
    assert paired_verdict(same[:2] + 0.5, same[:2]).verdict == "cannot tell (2 seeds)"


def test_one_seed_never_differs():
    """A 0.0104 difference on one seed (the committed schedules' constant, Keras - torch) is no verdict."""
    df, manifest = synthetic(offset=0.0104, seeds=1)
    effect = framework_effect(per_run(df, manifest), "val.accuracy", None, "torch").set_index("config")
    assert effect.loc["lr=0.1", "verdict"] == "cannot tell (1 seed)"
    assert "differ" not in " ".join(effect["verdict"])


def test_the_overview_gives_each_frameworks_effect_so_fewer_seeds_hide_no_verdict():
    """Keras at 5 seeds agrees with torch; a framework run at 1 seed cannot tell. The row verdict is the weakest
    (cannot tell (1 seed)); the overview counts each framework's own, so Keras's agree still shows."""
    from bench.answers import effect_counts

    df, manifest = synthetic(offset=0.0)
    one = df[(df["framework"] == "torch") & (df["seed"] == 0)].assign(framework="jax", run_id=lambda d: "jax" + d["run_id"])
    one_manifest = manifest[(manifest["framework"] == "torch") & (manifest["seed"] == 0)].assign(
        framework="jax", run_id=lambda d: "jax" + d["run_id"])
    effect = framework_effect(per_run(pd.concat([df, one]), pd.concat([manifest, one_manifest])), "val.accuracy",
                              None, "torch")
    assert set(effect["verdict"]) == {"cannot tell (1 seed)"}
    assert effect_counts(effect) == "keras − torch: 2 agree; jax − torch: 2 cannot tell (1 seed)"


def test_known_framework_difference_is_found_with_its_interval():
    df, manifest = synthetic(offset=0.02)
    effect = framework_effect(per_run(df, manifest), "val.accuracy", None, "torch").set_index("config")
    cell = effect.loc["lr=0.1", "keras − torch"]
    mean, rest = cell.split(" ", 1)
    low, high = (float(x) for x in rest.split("]")[0].strip("[").split(", "))
    assert float(mean) == pytest.approx(0.02, abs=1e-9)  # noise is shared by both frameworks within a seed
    assert low <= 0.02 <= high and low > 0 and cell.endswith(": differ")
    assert effect.loc["lr=0.1", "verdict"] == "differ"
    assert effect.loc["lr=0.01", "verdict"] != "differ"  # 0.001 apart, inside the seed spread


def test_rankings_state_ties():
    a, b, c = pd.Series([0.90, 0.91, 0.92]), pd.Series([0.905, 0.915, 0.925]), pd.Series([0.70, 0.71, 0.72])
    r = rank({"a": a, "b": b, "c": c}, lower_is_better=False)
    assert r.best == "b" and r.ties == ["a"]  # intervals overlap; c is separated
    one = rank({"a": a[:1], "c": c[:1]}, lower_is_better=False)
    assert one.best == "a" and one.ties is None  # one seed, no margin: nothing separated
    assert rank({"a": a[:1], "b": b[:1], "c": c[:1]}, False, margin=0.01).ties == ["a"]  # within the margin


def test_per_run_numbers():
    df, manifest = synthetic(offset=0.0)
    runs = per_run(df, manifest, target=0.85).set_index("run_id")
    run = runs.loc["torch-0.1-0"]
    assert run["epochs"] == 4 and run["best_epoch"] == 4
    assert run["median_epoch_seconds"] == 1.0 and run["first_epoch_seconds"] == 2.0
    assert run["epochs_to_target"] == 4  # 0.5 + 0.4 + noise >= 0.85 first at epoch 4


def test_a_train_loss_near_zero_is_shown_in_significant_digits_not_as_zero():
    df, manifest = synthetic(offset=0.0, seeds=1)
    df.loc[(df["split"] == "train") & (df["metric"] == "loss"), "value"] = 1.65e-6  # a net that fits its training set
    table = summary_table(per_run(df, manifest), target=None)
    row = table[(table["config"] == "lr=0.1") & (table["framework"] == "torch")].iloc[0]
    assert row["final train loss"] == "1.65e-06" and row["final val loss"] == "0.8000"


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
    # seed noise only (0.001 apart, inside the seed spread): no verdict
    assert verdicts["lr 0.1 ends higher", "torch"].startswith("cannot tell: ") and "within the margin" in verdicts[
        "lr 0.1 ends higher", "torch"]
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
    assert "keras − torch" in text and ": differ" in text
    assert (tmp_path / "report.html").read_text().startswith("<!doctype html>")
    assert write_report(tmp_path).read_text() == text  # deterministic


def test_claims_split_by_protocol_and_per_seed_and_say_their_source():
    df, manifest = synthetic(offset=0.02)
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
    assert higher.loc[("keras", "fresh"), "verdict"] == "held"
    assert higher.loc[("keras", "warm_start"), "verdict"] == "not held"
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
