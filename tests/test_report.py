"""The report's numbers: intervals and verdicts that follow from known differences, claims per framework."""

import re

import numpy as np
import pandas as pd
import pytest

from bench.answers import answer
from bench.claims import check_claim, evaluate_claims, parse_check
from bench.errors import SpecError
from bench.evidence import interval
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


def test_t_interval():
    mean, low, high = interval([0.020, 0.021, 0.019, 0.022, 0.018])
    assert mean == pytest.approx(0.02) and 0.018 < low < 0.02 < high < 0.022


def _effects(df, manifest, metric="val.accuracy", margin=0.005):
    runs = per_run(df, manifest)
    return answer(runs, metric, {metric: margin}, "torch")


def test_one_seed_never_differs():
    """A 0.0104 difference on one seed (the committed schedules' constant, Keras - torch) is no verdict."""
    a = _effects(*synthetic(offset=0.0104, seeds=1))
    comparisons = a.effects["val.accuracy"]["keras"].comparisons
    assert {c.verdict for c in comparisons.values()} == {"inconclusive"}
    assert a.same_winner()[0] == "cannot tell" and "differ" not in a.framework()


def test_known_framework_difference_is_found_with_its_interval():
    a = _effects(*synthetic(offset=0.02))
    keras = a.effects["val.accuracy"]["keras"]
    c = keras.comparisons["lr=0.1"]
    assert c.mean == pytest.approx(0.02, abs=1e-9) and c.low > 0.005  # noise is shared by both frameworks within a seed
    assert c.verdict == "differs" and keras.differs == ["lr=0.1"]
    assert keras.comparisons["lr=0.01"].verdict == "same"  # 0.001 apart, inside the 0.005 margin
    assert "keras differs at lr=0.1 (+2.00 points)" in a.framework()
    assert a.per_framework() == "keras differs at lr=0.1"  # its own answer, the configs one Holm family


def test_a_diverged_run_is_a_failure_of_its_config_never_scored_by_its_last_finite_value():
    """keras's lr 0.1 diverges in seed 0 at its last epoch (val loss NaN): the config is counted as failing, not scored."""
    df, manifest = synthetic(offset=0.0)
    last = (df["run_id"] == "keras-0.1-0") & (df["epoch"] == 4) & (df["split"] == "val")
    df.loc[last, "value"] = np.nan
    manifest.loc[manifest["run_id"] == "keras-0.1-0", "status"] = "diverged"
    runs = per_run(df, manifest).set_index("run_id")
    assert np.isnan(runs.loc["keras-0.1-0", "final_val_loss"])  # not epoch 3's finite value
    a = answer(runs.reset_index(), "val.loss", {"val.loss": 0.02}, "torch")
    assert "lr=0.1" in a.failing and a.failing["lr=0.1"]["keras"] == (1, SEEDS)
    assert "lr=0.1" not in a.ranking.means and "lr=0.1" not in a.effects["val.loss"]["keras"].comparisons
    assert "lr=0.1 trains in 9 of 10 runs (torch 5 of 5, keras 4 of 5)" in a.failing_text()


def test_the_effect_table_prints_the_margin_and_the_numbers_its_verdicts_used(tmp_path):
    """The old cells said "seed sd X: agree" where the verdict had used the study's margin, not X."""
    df, manifest = synthetic(offset=0.02)
    (tmp_path / "s").mkdir()
    df.to_csv(tmp_path / "s" / "results.csv", index=False)
    manifest.to_csv(tmp_path / "s" / "manifest.csv", index=False)
    text = write_report(tmp_path).read_text()
    intro = text.split("Framework against torch, final val accuracy")[1]
    margin = float(re.search(r"±(\d+\.\d+) points", intro).group(1)) / 100
    assert margin == 0.005  # the default where the study declares none, printed above its table
    table = intro.split("\n\n")[1]
    assert "keras − torch (points)" in table
    cells = re.findall(r"([+-]\d+\.\d+) \[(90%: )?([+-]\d+\.\d+), ([+-]\d+\.\d+)\], sd [\d.]+: (\w+)", table)
    assert {verdict for *_, verdict in cells} == {"same", "differs"}
    for _mean, ninety, low, high, verdict in cells:
        low, high = float(low) / 100, float(high) / 100
        if verdict == "differs":  # its 95% interval, printed, lies beyond the printed margin
            assert not ninety and (low > margin or high < -margin)
        if verdict == "same":  # its 90% interval, printed, lies inside it
            assert ninety and -margin < low and high < margin


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


def test_a_claim_whose_arithmetic_fails_is_its_own_verdict_never_the_reports_end():
    """Arithmetic on what the runs give (a status divided by 2) fails only when the claim is evaluated: that claim
    cannot tell, and the others are judged."""
    df, manifest = synthetic(offset=0.02)
    broken = {"text": "a ratio", "check": 'status(lr=0.1) / 2 > 1'}
    table = evaluate_claims([CLAIMS[0], broken], df, manifest)
    verdicts = table.set_index(["claim", "framework"])["verdict"]
    assert verdicts["a ratio", "torch"].startswith("cannot tell: the claim cannot be evaluated")
    assert verdicts["lr 0.1 ends higher", "keras"] == "held"


@pytest.mark.parametrize("check", ['final("val.accuracy", lr=0.1) > 0.5 and 1/0', 'final("val.loss") > -(2 / (1 - 1))'])
def test_arithmetic_on_constants_that_fails_is_refused_when_the_study_loads(check):
    with pytest.raises(SpecError, match="cannot be evaluated"):
        check_claim(check, pd.DataFrame({"lr": [0.1]}))


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
    assert "keras − torch" in text and ": differs" in text
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


def test_the_claims_table_has_one_row_per_claim_and_one_cell_where_frameworks_agree():
    from bench.report import claims_table

    df, manifest = synthetic(offset=0.02)
    claims = [{"text": "lr 0.1 ends higher", "source": "seed", "check": CLAIMS[0]["check"]},
              {"text": "all done", "source": "lrbench", "per_seed": True, "check": 'status(lr=0.1) == "done"'}]
    table = claims_table(evaluate_claims(claims, df, manifest)).set_index(["claim", "seed"])
    assert len(table) == 1 + SEEDS  # the per-seed claim has a row per seed, the other one row
    assert table.loc[("all done", "0"), "verdict"] == "held (all 2)"  # both frameworks: one cell
    assert table.loc[("lr 0.1 ends higher", "all"), "verdict"].startswith("torch: cannot tell, keras: held")
