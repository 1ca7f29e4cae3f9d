"""The LR range test's rules (bench/find_lr.py): smoothing, the stop rule, the suggestions, the comparison."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from bench.find_lr import AGREE, SMOOTHING, STOP, compare, smoothed, stop_step, suggest
from bench.report import write_report
from bench.results import COLUMNS
from bench.schedules import Schedule

GRID = Schedule("range_test", 10.0, {"min_lr": 1e-5, "steps": 61})


def curve(shift=0, steps=61, noise=0.0):
    """A range test's rows: flat, a descent around lr 1e-2 (shifted by ``shift`` grid steps), then a blow-up."""
    lrs = np.array([GRID.lr_at(t, 1) for t in range(steps)])
    x = np.log10(lrs) - shift / 10  # 10 grid steps per decade
    loss = 2.3 - 1.5 / (1 + np.exp(-4 * (x + 2))) + np.where(x > -0.7, 30 * (x + 0.7) ** 2, 0)
    loss = loss + noise * np.random.default_rng(0).normal(size=steps)
    return pd.DataFrame({"step": np.arange(1, steps + 1), "lr": lrs, "loss": loss, "smoothed_loss": smoothed(loss)})


def rows(frameworks):
    out = []
    for fw, c in frameworks.items():
        for _, r in c.iterrows():
            for metric in ("lr", "loss", "smoothed_loss"):
                out.append({"run_id": fw, "study": "t-find-lr", "framework": fw, "framework_version": "1", "device": "cpu",
                            "model": "lenet", "dataset": "mnist", "optimizer": "sgd", "schedule": "range_test",
                            "lr": 10.0, "batch_size": 64, "seed": 0, "epoch": 1, "step": int(r["step"]),
                            "split": "train", "metric": metric, "value": r[metric]})
    return pd.DataFrame(out, columns=COLUMNS)


def test_smoothing_is_a_bias_corrected_moving_average():
    assert smoothed(np.full(5, 2.0)) == pytest.approx([2.0] * 5)  # no pull towards 0 at the start
    values = smoothed(np.array([1.0, 3.0]))
    assert values[1] == pytest.approx((SMOOTHING * 0.02 * 1 + 0.02 * 3) / (1 - SMOOTHING**2))
    assert math.isnan(smoothed(np.array([1.0, math.nan, 1.0]))[2])


def test_the_test_stops_past_four_times_the_minimum_or_at_a_non_finite_loss():
    assert stop_step(np.array([2.0, 1.0, 3.9, 4.1])) == 3
    assert stop_step(np.array([2.0, 1.0, STOP * 1.0])) is None  # at 4x: not past it
    assert stop_step(np.array([2.0, math.inf])) == 1
    assert stop_step(np.array([2.0, 1.5])) is None


def test_suggestions_find_the_descent_and_a_tenth_of_the_minimum():
    s = suggest(curve())
    lr_min = curve().set_index("step")["lr"][s["minimum_step"]]
    assert s["minimum / 10"] == pytest.approx(lr_min / 10)
    assert 1e-3 < s["steepest"] < lr_min  # in the descent (centred on 1e-2, the smoothing lags it), before the minimum


def test_compare_counts_grid_steps_and_where_losses_part():
    table = compare(rows({"torch": curve(), "keras": curve(), "paddle": curve(shift=1)}), "torch").set_index("framework")
    grid = "steepest: grid steps from torch"
    assert table.loc["torch", grid] == 0 and table.loc["keras", grid] == 0
    assert table.loc["paddle", grid] == 1 and table.loc["paddle", "minimum: grid steps from torch"] == 1
    agree = [c for c in table if c.startswith("loss vs torch")][0]
    assert table.loc["keras", agree] == 0 and table.loc["keras", f"first step beyond {AGREE:g}"] == "none"
    assert table.loc["paddle", agree] > AGREE


def test_the_report_shows_a_find_lr_folder(tmp_path):
    folder = tmp_path / "schedules-find-lr"
    folder.mkdir()
    rows({"torch": curve(), "keras": curve(noise=1e-6)}).to_csv(folder / "find-lr.csv", index=False)
    text = write_report(tmp_path).read_text()
    assert "## schedules-find-lr: LR range test" in text and "steepest" in text
    assert (folder / "figures" / "schedules_find_lr.png").stat().st_size > 10_000
    assert "![schedules_find_lr](schedules-find-lr/figures/schedules_find_lr.png)" in text


@pytest.mark.parametrize("damage", ["empty", "not text", "a column cut"])
def test_a_damaged_find_lr_folder_is_one_line_naming_the_file_and_the_command(tmp_path, damage):
    from bench.errors import BenchError

    folder = tmp_path / "schedules-find-lr"
    folder.mkdir()
    path = folder / "find-lr.csv"
    if damage == "empty":
        path.write_text("")
    elif damage == "not text":
        path.write_bytes(bytes(range(128, 256)) * 8)
    else:
        rows({"torch": curve()}).drop(columns="metric").to_csv(path, index=False)
    with pytest.raises(BenchError, match=rf"^{path} is damaged \(.*\): run `bench find-lr schedules` again$"):
        write_report(tmp_path)


def test_the_report_names_a_framework_whose_range_test_did_not_run(tmp_path):
    folder = tmp_path / "schedules-find-lr"
    folder.mkdir()
    rows({"torch": curve()}).to_csv(folder / "find-lr.csv", index=False)
    (folder / "failed.csv").write_text("framework,error\n")  # a run where all went well
    assert "Did not run" not in write_report(tmp_path).read_text()
    (folder / "failed.csv").write_text("framework,error\npaddle,paddle's range test: its process died\n")
    assert "Did not run: paddle (paddle's range test: its process died)" in write_report(tmp_path).read_text()


def test_a_range_test_without_a_clear_minimum_says_so():
    """The quick schedules study's test: 2.305 -> 2.284 over all its steps, the stop rule never triggered."""
    clear = compare(rows({"torch": curve()}), "torch").iloc[0]
    assert clear["clear minimum"] == "yes"
    assert float(clear["minimum rests on (smoothed loss)"].split("(")[1].rstrip("%)")) < -20  # a clear descent
    flat = curve().assign(loss=np.linspace(2.305, 2.284, 61))
    flat = flat.assign(smoothed_loss=smoothed(flat["loss"].to_numpy()))
    row = compare(rows({"torch": flat}), "torch").iloc[0]
    assert row["clear minimum"].startswith("no clear minimum: the smoothed loss fell only 0.")
    assert "never triggered in 61 steps" in row["clear minimum"] and "--max-lr" in row["clear minimum"]
    assert row["minimum rests on (smoothed loss)"].endswith("(-0.5%)")  # the smoothing lags the raw 0.9%
    assert row["clear minimum"].endswith(": more --steps (a slower climb of the lr leaves it time to fall), and a "
                                         "higher --max-lr (the loss never turned up to lr 10)")


def test_a_loss_that_turned_short_of_the_stop_rule_asks_for_steps_not_a_higher_lr():
    """As a 100-step test on one-cycle's LeNet gave: the loss hardly fell, then climbed past lr 0.01 to about twice its
    minimum (smoothed), short of the stop rule's 4x. Raising --max-lr (already 10) would not help; more steps would."""
    lrs = curve()["lr"].to_numpy()
    loss = np.where(lrs < 0.01, 2.30 - 0.1 * lrs, 2.2 + 2.0 * np.log10(np.maximum(lrs, 0.01) / 0.01))
    turned = curve().assign(loss=loss, smoothed_loss=smoothed(loss))
    why = compare(rows({"torch": turned}), "torch").iloc[0]["clear minimum"]
    assert "though the loss turned past lr 0.01" in why and "--max-lr" not in why, why
    assert why.endswith(": more --steps (a slower climb of the lr leaves it time to fall)"), why


def test_the_report_warns_of_an_uninformative_range_test(tmp_path):
    flat = curve().assign(loss=np.linspace(2.305, 2.284, 61))
    flat = flat.assign(smoothed_loss=smoothed(flat["loss"].to_numpy()))
    (tmp_path / "t-find-lr").mkdir()
    rows({"torch": flat}).to_csv(tmp_path / "t-find-lr" / "find-lr.csv", index=False)
    text = write_report(tmp_path).read_text()
    assert "**torch: no clear minimum: " in text and "Its suggestions below are not a recommendation." in text


def test_a_cut_range_test_file_is_one_line(tmp_path, capsys):
    """A find-lr.csv cut mid-line once reported 50 steps and suggestions the test never gave."""
    from bench.cli import main

    (tmp_path / "t-find-lr").mkdir()
    text = rows({"torch": curve()}).to_csv(index=False)
    (tmp_path / "t-find-lr" / "find-lr.csv").write_text(text[: len(text) // 2].rstrip("\n"))
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "find-lr.csv is damaged (it ends mid-line" in err[0] and "bench find-lr t" in err[0], err


@pytest.mark.parametrize("damage, said", [
    ("rows cut at a line end", "keras: 91 rows where the 61 steps find-lr.json records have 183; rows are lost"),
    ("a framework's rows lost", "keras: 0 rows where the 61 steps find-lr.json records have 183; rows are lost"),
    ("steps renumbered", "its steps do not run 1, 2, ..."),
])
def test_a_range_test_file_that_differs_from_its_manifest_is_one_line(tmp_path, capsys, damage, said):
    """A find-lr.csv that lost whole rows passed every check of the file alone: its manifest says what was written."""
    from bench.cli import main
    from bench.find_lr import MANIFEST

    folder = tmp_path / "t-find-lr"
    folder.mkdir()
    df = rows({"torch": curve(), "keras": curve(1)})
    (folder / MANIFEST).write_text(json.dumps({"frameworks": [{"framework": "torch", "steps_run": 61},
                                                              {"framework": "keras", "steps_run": 61}]}))
    (folder / "find-lr.csv").write_text(df.to_csv(index=False))
    assert main(["report", str(tmp_path)]) == 0  # as written: it holds what its manifest says
    assert capsys.readouterr().out.strip() == (f"report: {tmp_path / 'report.md'} and {tmp_path / 'report.html'} "
                                               "(one self-contained page: open it in a browser)")
    if damage == "rows cut at a line end":
        df = df.iloc[:len(df) * 3 // 4]
    elif damage == "a framework's rows lost":
        df = df[df["framework"] != "keras"]
    else:
        df = df.assign(step=df["step"] + 1)
    (folder / "find-lr.csv").write_text(df.to_csv(index=False))
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "find-lr.csv is damaged" in err[0] and said in err[0] and "bench find-lr t" in err[0], err
