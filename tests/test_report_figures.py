"""The report's framework-comparison figures, from small synthetic results in the exact tidy schema."""

import math

import pandas as pd
import pytest

from bench.plots import lr_sensitivity, paired_differences, plot_comparison
from bench.results import COLUMNS

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BASE = dict(model="lenet", dataset="mnist", optimizer="sgd(momentum=0.9)", lr=0.1, batch_size=64)
SCHEDULES = {  # the lr each schedule applies in epoch e (from 1)
    "step(gamma=0.5,step_size=2)": lambda lr, e: lr * 0.5 ** ((e - 1) // 2),
    "inverse_sqrt": lambda lr, e: lr / math.sqrt(e),
    "constant": lambda lr, e: lr,
}
OFFSET = 0.01


def make_study(study="schedules", frameworks=("torch", "keras", "paddle"), configs=None, seeds=(0, 1), epochs=4,
               offsets=None, nan_at=None):
    """Tidy rows per framework x config x seed; ``offsets[fw]`` shifts that framework's val metrics,
    ``nan_at=(fw, epoch)`` makes the first config's seed-0 run of ``fw`` diverge there."""
    configs = configs or [{"schedule": s} for s in list(SCHEDULES)[:2]]
    offsets = offsets or {}
    rows = []
    for fw in frameworks:
        for i, config in enumerate(configs):
            cfg = BASE | {"schedule": "constant"} | config
            for seed in seeds:
                run = dict(run_id=f"{study}-{fw}-{i}-s{seed}", study=study, framework=fw, framework_version="1.0",
                           device="cpu", seed=seed, **cfg)
                for epoch in range(1, epochs + 1):
                    loss = 2.3 * 0.7 ** (epoch * (i + 1)) + 0.03 * seed
                    acc = 1 - loss / 2.5
                    if nan_at == (fw, epoch) and i == 0 and seed == 0:
                        loss = acc = math.nan
                    off = offsets.get(fw, 0.0)
                    lr = SCHEDULES[cfg["schedule"]](cfg["lr"], epoch)
                    seconds = (4.0 if epoch == 1 else 1.0) * (1 + 0.5 * (fw != "torch"))  # epoch 1 pays warm-up
                    metrics = [("train", "loss", loss), ("train", "accuracy", acc), ("val", "loss", loss + off),
                               ("val", "accuracy", acc + off), ("train", "lr", lr), ("train", "epoch_seconds", seconds),
                               ("val", "eval_seconds", 0.2)]
                    rows += [run | dict(epoch=epoch, step=math.nan, split=s, metric=m, value=v) for s, m, v in metrics]
                    step = dict(epoch=epoch, step=epoch * 10, split="train", metric="loss", value=loss * 1.1)
                    rows.append(run | step)  # step rows must stay out of the epoch figures
    return pd.DataFrame(rows, columns=COLUMNS)


def assert_figure(png):
    assert png.suffix == ".png" and png.exists()
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    assert png.stat().st_size > 10_000
    svg = png.with_suffix(".svg")
    assert svg.exists() and svg.stat().st_size > 10_000 and b"<svg" in svg.read_bytes()[:1000]


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return out, plot_comparison(make_study(offsets={"keras": OFFSET}, nan_at=("paddle", 3)), "schedules", out)


def test_every_comparison_figure_is_written(full):
    out, pngs = full
    assert [p.name for p in pngs] == ["schedules_frameworks_overlaid.png", "schedules_differences.png",
                                      "schedules_epoch_seconds.png", "schedules_applied_lr.png"]
    for png in pngs:
        assert png.parent == out
        assert_figure(png)


def test_differences_need_a_second_framework(tmp_path):
    pngs = plot_comparison(make_study(frameworks=("torch",), seeds=(0,), epochs=3), "solo", tmp_path)
    assert [p.stem for p in pngs] == ["solo_frameworks_overlaid", "solo_epoch_seconds", "solo_applied_lr"]
    assert not list(tmp_path.glob("solo_differences.*"))


def test_constant_lr_gets_no_applied_lr_figure(tmp_path):
    df = make_study(frameworks=("torch", "keras"), configs=[{"lr": 0.1}, {"lr": 0.01}], seeds=(0,), epochs=3)
    pngs = plot_comparison(df, "lr-sweep", tmp_path)
    assert [p.stem for p in pngs] == ["lr-sweep_frameworks_overlaid", "lr-sweep_differences", "lr-sweep_epoch_seconds",
                                      "lr-sweep_lr_sensitivity"]
    assert not list(tmp_path.glob("lr-sweep_applied_lr.*"))


def test_nothing_to_plot(tmp_path):
    assert plot_comparison(make_study().iloc[:0], "empty", tmp_path / "none") == []
    assert not (tmp_path / "none").exists()


@pytest.mark.parametrize("split, metric", [("val", "accuracy"), ("val", "loss")])
def test_paired_differences_recover_a_known_offset(split, metric):
    df = make_study(offsets={"keras": OFFSET}, nan_at=("paddle", 3))
    diffs = paired_differences(df, split, metric, reference="torch")
    assert list(diffs.columns) == ["framework", "config", "seed", "epoch", "difference"]
    assert set(diffs["framework"]) == {"keras", "paddle"}
    assert set(diffs["config"]) == {"step(gamma=0.5,step_size=2)", "inverse_sqrt"}  # labels free of the framework
    keras, paddle = diffs[diffs["framework"] == "keras"], diffs[diffs["framework"] == "paddle"]
    assert len(keras) == 2 * 2 * 4  # configs x seeds x epochs, each paired once
    assert keras["difference"].to_numpy() == pytest.approx(OFFSET, abs=1e-12)
    assert (paddle["difference"] == 0).all()
    assert len(paddle) == len(keras) - 1  # the diverged epoch has no pair
    diverged = (paddle["config"] == "step(gamma=0.5,step_size=2)") & (paddle["seed"] == 0) & (paddle["epoch"] == 3)
    assert not diverged.any()


def test_paired_differences_against_a_missing_reference():
    df = make_study(frameworks=("keras", "paddle"), seeds=(0,), epochs=2)
    assert paired_differences(df, "val", "loss", reference="torch").empty


def test_lr_sensitivity_reads_final_and_best_per_run_for_configs_that_differ_by_lr():
    """Final and best val accuracy, final train loss, per run; a group with one lr (adam) is left out;
    a diverged run's final is its last finite epoch."""
    configs = [{"lr": 0.1}, {"lr": 0.01}, {"lr": 0.001, "optimizer": "adam"}]
    df = make_study(frameworks=("torch", "keras"), configs=configs, seeds=(0, 1), epochs=4, nan_at=("keras", 4))
    table = lr_sensitivity(df)
    assert set(table["group"]) == {"sgd(momentum=0.9)"} and set(table["lr"]) == {0.1, 0.01}
    assert len(table) == 2 * 2 * 2 * 3  # frameworks x lrs x seeds x measures
    pick = lambda fw, lr, seed, measure: table.query(  # noqa: E731
        "framework == @fw and lr == @lr and seed == @seed and measure == @measure")["value"].item()
    rows = df[(df["step"].isna()) & (df["framework"] == "torch") & (df["lr"] == 0.01) & (df["seed"] == 1)]
    val_acc = rows[(rows["split"] == "val") & (rows["metric"] == "accuracy")].sort_values("epoch")["value"]
    assert pick("torch", 0.01, 1, "final val accuracy") == val_acc.iloc[-1]
    assert pick("torch", 0.01, 1, "best val accuracy") == val_acc.max()
    train_loss = rows[(rows["split"] == "train") & (rows["metric"] == "loss")].sort_values("epoch")["value"]
    assert pick("torch", 0.01, 1, "final train loss") == train_loss.iloc[-1]
    diverged = df[(df["framework"] == "keras") & (df["lr"] == 0.1) & (df["seed"] == 0) & (df["split"] == "val")
                  & (df["metric"] == "accuracy") & (df["epoch"] == 3)]["value"].item()
    assert pick("keras", 0.1, 0, "final val accuracy") == diverged
    assert lr_sensitivity(make_study(configs=[{"lr": 0.1}], seeds=(0,))).empty  # one lr: nothing to draw
