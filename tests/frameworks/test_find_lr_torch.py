"""`bench find-lr` end to end on the PyTorch backend: the lr of every step, the stop rule, the files."""

import pandas as pd
import pytest

from bench.cli import main
from bench.find_lr import STOP, smoothed, stop_step
from bench.schedules import Schedule

pytestmark = pytest.mark.env_torch  # the tox envs that run this file (see tests/conftest.py)

STUDY = """name = "tiny"
dataset = "digits"
model = "mlp"
epochs = 1
batch_size = 32
lr = 0.1
optimizer = { name = "sgd", momentum = 0.9 }
"""


def run(tmp_path, *options):
    study = tmp_path / "tiny.toml"
    study.write_text(STUDY)
    assert main(["find-lr", str(study), "--frameworks", "torch", "--out", str(tmp_path), *options]) == 0
    df = pd.read_csv(tmp_path / "tiny-find-lr" / "find-lr.csv")
    return df.pivot_table(index="step", columns="metric", values="value")


def test_every_step_applies_the_range_tests_lr_and_the_files_are_written(tmp_path, capsys):
    curve = run(tmp_path, "--min-lr", "1e-4", "--max-lr", "0.5", "--steps", "60")  # 60 steps: past one epoch of 45 batches
    reference = Schedule("range_test", 0.5, {"min_lr": 1e-4, "steps": 60})
    assert list(curve.index) == list(range(1, 61))
    for step, lr in curve["lr"].items():
        assert lr == pytest.approx(reference.lr_at(step - 1, 45), rel=1e-12)
    assert curve["lr"].iloc[-1] == pytest.approx(0.5)
    assert curve["smoothed_loss"].to_numpy() == pytest.approx(smoothed(curve["loss"].to_numpy()))
    suggestions = pd.read_csv(tmp_path / "tiny-find-lr" / "suggestions.csv")
    assert list(suggestions["framework"]) == ["torch"] and 1e-4 <= suggestions["steepest lr"].item() <= 0.5
    assert (tmp_path / "tiny-find-lr" / "failed.csv").read_text() == "framework,error\n"  # none failed: no stale names
    assert (tmp_path / "tiny-find-lr" / "figures" / "tiny_find_lr.png").stat().st_size > 10_000
    out = capsys.readouterr().out
    assert "steepest = where the smoothed loss falls fastest per decade of lr" in out
    header = next(line for line in out.splitlines() if line.startswith("framework"))
    assert header.split()[-2:] == ["clear", "minimum"] and "grid steps" not in out  # one framework: no comparison
    assert max(len(line) for line in out.splitlines() if not line.startswith("torch:")) < 160, out


def test_the_test_stops_once_the_smoothed_loss_passes_four_times_its_minimum(tmp_path, capsys):
    curve = run(tmp_path, "--min-lr", "1e-3", "--max-lr", "1e4", "--steps", "100")
    smooth = curve["smoothed_loss"].to_numpy()
    last = len(smooth) - 1
    assert len(smooth) < 100, "an lr of 1e4 should blow the loss up before the last step"
    assert stop_step(smooth) == last  # the rows end at the first step past the rule
    assert not pd.notna(smooth[last]) or smooth[last] > STOP * smooth[:last].min()
    assert "stopped: the loss climbed" in capsys.readouterr().err
