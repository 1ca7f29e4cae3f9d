"""Figures fit what ran: no empty panel, no band from one seed, configs folded when many, no library warnings."""

import warnings

import matplotlib.pyplot as plt
import pytest

from bench import plots
from bench.configs import config_labels
from tests.test_find_lr import curve, rows
from tests.test_plots import make_results

SEVEN = tuple({"lr": lr} for lr in (1.0, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01))


@pytest.fixture(autouse=True)
def warnings_fail():
    """A warning matplotlib or seaborn prints to the user's terminal fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield
    plt.close("all")


def comparison(df, name):
    epochs = plots._epoch_rows(df)
    _, order, _ = config_labels(epochs)
    return epochs, order, plots._frameworks(epochs, "torch")


def test_one_seed_draws_no_band_and_says_so():
    df = make_results(seeds=(0,), diverged=False)
    epochs, order, frameworks = comparison(df, "overlaid")
    fig = plots._overlaid(plots.pd.concat([plots._select(epochs, *p) for p in plots.COMPARED]), "s", order, frameworks)
    assert "1 seed: no band" in fig._suptitle.get_text() and "sd" not in fig._suptitle.get_text()
    assert not any(c.__class__.__name__ == "PolyCollection" for ax in fig.axes for c in ax.collections)
    two = make_results(seeds=(0, 1), diverged=False)
    epochs, order, frameworks = comparison(two, "overlaid")
    fig = plots._overlaid(plots.pd.concat([plots._select(epochs, *p) for p in plots.COMPARED]), "s", order, frameworks)
    assert "band: ±1 sd over 2 seeds" in fig._suptitle.get_text()


def test_many_configs_or_one_epoch_fold_into_one_panel_per_metric():
    """Seven configs of one epoch in three frameworks: three panels of final values, not 21 panels of one dot."""
    df = make_results(configs=SEVEN, frameworks=("torch", "keras", "paddle"), seeds=(0,), epochs=1, diverged=False,
                      step_rows=False, weight_norms=False)
    epochs, order, frameworks = comparison(df, "overlaid")
    fig = plots._overlaid(plots.pd.concat([plots._select(epochs, *p) for p in plots.COMPARED]), "s", order, frameworks)
    assert len(fig.axes) == 3 and "final values (epoch 1; 1 seed)" in fig._suptitle.get_text()
    assert [t.get_text() for t in fig.axes[-1].get_xticklabels()] == [plots._wrap(c, 18) for c in order]
    several = make_results(configs=SEVEN, seeds=(0,), epochs=3, diverged=False, step_rows=False, weight_norms=False)
    epochs, order, frameworks = comparison(several, "overlaid")
    fig = plots._overlaid(plots.pd.concat([plots._select(epochs, *p) for p in plots.COMPARED]), "s", order, frameworks)
    assert len(fig.axes) == 3 * 7  # seven configs over three epochs: a panel each still fits


def test_many_groups_of_lrs_fold_into_lines_told_apart_by_colour_and_marker():
    groups = tuple({"lr": lr, "schedule": s, "batch_size": b} for s in ("constant", "cosine") for b in (32, 64)
                   for lr in (0.1, 0.01))
    df = make_results(configs=groups, frameworks=("torch",), seeds=(0,), epochs=3, diverged=False, step_rows=False,
                      weight_norms=False)
    table = plots.lr_sensitivity(df)
    fig = plots._lr_sensitivity(table, plots._epoch_rows(df), "s", ["torch"])
    assert len(fig.axes) == 3  # one framework: one row of the three measures
    styles = {(tuple(line.get_color()), line.get_marker()) for line in fig.axes[0].lines}
    assert len(fig.axes[0].lines) == 4 and len({m for _, m in styles}) == 4 and len(styles) == 4
    assert fig._suptitle.get_text().endswith("(mean; 1 seed)")


def test_epoch_seconds_titles_do_not_overlap():
    df = make_results(configs=({"lr": 0.1, "model": "mlp"}, {"lr": 0.1, "model": "lenet"}), frameworks=("torch",),
                      seeds=(0,), epochs=3, diverged=False, step_rows=False, weight_norms=False)
    seconds = plots._epoch_rows(df)
    fig = plots._epoch_seconds(seconds[seconds["metric"] == "epoch_seconds"], "s", ["torch"])
    fig.canvas.draw()
    left, right = (ax.title.get_window_extent() for ax in fig.axes[:2])
    assert left.x1 < right.x0


def test_find_lr_with_one_framework_has_no_panel_against_another_and_names_its_markers(tmp_path):
    png = plots.plot_find_lr(rows({"torch": curve()}), "t", tmp_path)
    assert png.exists()
    fig = plots._find_lr_figure(rows({"torch": curve()}), "t", "torch")
    assert len(fig.axes) == 1
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == [
        "steepest descent (the framework's marker)", "minimum / 10"]
    assert len(plots._find_lr_figure(rows({"torch": curve(), "keras": curve(shift=1)}), "t", "torch").axes) == 2
