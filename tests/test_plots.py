"""Figures from small synthetic results in the exact tidy schema, including one diverged run."""

import math

import numpy as np
import pandas as pd
import pytest

from bench.plots import config_labels, default_figures, plot_comparison, plot_folder, plot_study
from bench.results import COLUMNS

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LAYERS = ("conv1", "fc1")
BASE = dict(model="lenet", optimizer="sgd(momentum=0.5)", schedule="constant", lr=0.1, batch_size=64)


def make_results(study="lr-sweep", configs=({"lr": 1.0}, {"lr": 0.1}, {"lr": 0.01}), frameworks=("torch", "keras"),
                 seeds=(0, 1), epochs=5, steps_per_epoch=4, step_rows=True, weight_norms=True, diverged=True,
                 decay=False):
    """Tidy rows for every framework x config x seed; the first config's torch seed-1 run diverges at epoch 3."""
    rows = []
    for fw in frameworks:
        for i, config in enumerate(configs):
            cfg = BASE | config
            for seed in seeds:
                run = dict(run_id=f"{study}-{fw}-{i}-s{seed}", study=study, framework=fw, framework_version="1.0",
                           device="cpu", dataset="mnist", seed=seed, **cfg)
                blows_up = diverged and fw == "torch" and i == 0 and seed == 1
                rng = np.random.default_rng(seed)
                for epoch in range(1, epochs + 1):
                    if blows_up and epoch > 3:
                        break
                    nan = blows_up and epoch == 3
                    loss = math.nan if nan else 2.3 * 0.5 ** (epoch * (i + 1) / 2) + rng.uniform(0, 0.05)
                    acc = math.nan if nan else 1 - loss / 2.5
                    lr = cfg["lr"] * (0.5 ** (epoch // 2) if decay else 1)
                    metrics = [("train", "loss", loss), ("train", "accuracy", acc), ("val", "loss", loss * 1.1),
                               ("val", "accuracy", acc * 0.98), ("train", "lr", lr), ("train", "epoch_seconds", 1.5)]
                    if weight_norms:
                        metrics += [("train", f"weight_norm/{layer}", 5 + epoch * (j + 1) * cfg["lr"])
                                    for j, layer in enumerate(LAYERS)]
                    rows += [run | dict(epoch=epoch, step=math.nan, split=s, metric=m, value=v) for s, m, v in metrics]
                    if step_rows:
                        for k in range(steps_per_epoch):
                            step = (epoch - 1) * steps_per_epoch + k + 1
                            value = math.inf if nan else loss * (1.2 - k * 0.1)
                            rows.append(run | dict(epoch=epoch, step=step, split="train", metric="loss", value=value))
    return pd.DataFrame(rows, columns=COLUMNS)


def assert_figure(png):
    assert png.exists() and png.suffix == ".png"
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    assert png.stat().st_size > 10_000
    svg = png.with_suffix(".svg")
    assert svg.exists() and svg.stat().st_size > 10_000


@pytest.fixture(scope="module")
def full_plot(tmp_path_factory):
    out = tmp_path_factory.mktemp("figures")
    df = make_results(decay=True)
    return out, plot_study(df, "lr-sweep", ["curves", "lr", "steps", "weight_norms"], out)


def test_every_declared_figure_is_written(full_plot):
    out, pngs = full_plot
    names = {"lr-sweep_curves_torch", "lr-sweep_curves_keras", "lr-sweep_curves_by_framework",
             "lr-sweep_steps", "lr-sweep_weight_norms"}
    assert {p.stem for p in pngs} == names
    assert all(p.parent == out for p in pngs)
    for png in pngs:
        assert_figure(png)


@pytest.mark.parametrize("configs, labels, title", [
    (({"lr": 0.01}, {"lr": 1.0}, {"lr": 0.1}), ["lr=1", "lr=0.1", "lr=0.01"], "lr"),
    (({"schedule": "constant"}, {"schedule": "multistep(gamma=0.5,milestones=15|30)"}),
     ["constant", "multistep(gamma=0.5,milestones=15|30)"], "schedule"),
    (({"optimizer": "adam", "lr": 0.001}, {"optimizer": "sgd(momentum=0.9)", "lr": 0.01},
      {"optimizer": "adam", "lr": 0.01}, {"optimizer": "sgd(momentum=0.9)", "lr": 0.1}),
     ["adam lr=0.01", "adam lr=0.001", "sgd(momentum=0.9) lr=0.1", "sgd(momentum=0.9) lr=0.01"], "optimizer, lr"),
    (({},), ["sgd(momentum=0.5)"], "optimizer"),
])
def test_config_labels(configs, labels, title):
    df = make_results(configs=configs, epochs=1, step_rows=False, weight_norms=False, diverged=False)
    per_row, order, got_title = config_labels(df)
    assert order == labels
    assert got_title == title
    assert set(per_row) == set(labels)
    assert per_row.groupby(df["run_id"]).nunique().eq(1).all()


def test_figures_without_rows_are_skipped(tmp_path):
    df = make_results(frameworks=("torch",), seeds=(0,), step_rows=False, weight_norms=False, diverged=False)
    pngs = plot_study(df, "bare", ["curves", "steps", "weight_norms"], tmp_path)
    assert sorted(p.name for p in pngs) == ["bare_curves_by_framework.png", "bare_curves_torch.png"]
    assert not list(tmp_path.glob("bare_steps.*")) and not list(tmp_path.glob("bare_weight_norms.*"))
    assert plot_study(df.iloc[:0], "empty", ["curves"], tmp_path / "none") == []
    assert not (tmp_path / "none").exists()


def test_undeclared_figures_are_not_drawn(tmp_path):
    df = make_results(frameworks=("torch",), seeds=(0,), epochs=2, diverged=False)
    assert [p.name for p in plot_study(df, "s", ["weight_norms"], tmp_path)] == ["s_weight_norms.png"]


def test_default_figures_follow_the_rows():
    assert default_figures(make_results(epochs=2)) == ["curves", "steps", "weight_norms"]
    plain = make_results(epochs=3, step_rows=False, weight_norms=False, decay=True)
    assert default_figures(plain) == ["curves", "lr"]


def test_plot_folder_writes_into_each_study(tmp_path):
    small = dict(frameworks=("torch",), seeds=(0,), epochs=3, weight_norms=False, diverged=False)
    for study in ("a", "b"):
        (tmp_path / study).mkdir()
        make_results(study=study, **small).to_csv(tmp_path / study / "results.csv", index=False)
    pngs = plot_folder(tmp_path, {"a": ["steps"]})  # b gets the default: curves, and steps since it logged them
    # one framework: no differences figure; three lrs of one config: the lr-sensitivity figure
    comparison = ["frameworks_overlaid.png", "epoch_seconds.png", "lr_sensitivity.png"]
    assert sorted(p.relative_to(tmp_path).as_posix() for p in pngs) == sorted(
        ["a/figures/a_steps.png", "b/figures/b_curves_by_framework.png", "b/figures/b_curves_torch.png",
         "b/figures/b_steps.png"] + [f"{s}/figures/{s}_{name}" for s in "ab" for name in comparison])
    assert [p.name for p in plot_folder(tmp_path / "a", {"a": []})] == [f"a_{name}" for name in comparison]
    assert [p.name for p in plot_folder(tmp_path / "b", {"b": ["steps"]})] == ["b_steps.png"] + [f"b_{n}" for n in comparison]


def test_a_figure_is_drawn_again_only_when_its_rows_change(tmp_path):
    """A rerun with nothing new keeps every figure file as it is; a changed row redraws its study's, and only those."""
    small = dict(frameworks=("torch",), seeds=(0,), epochs=2, weight_norms=False, diverged=False, step_rows=False)
    for study in ("a", "b"):
        (tmp_path / study).mkdir()
        make_results(study=study, **small).to_csv(tmp_path / study / "results.csv", index=False)

    def stamps():
        return {p.relative_to(tmp_path).as_posix(): p.stat().st_mtime_ns for p in tmp_path.rglob("*.[ps][nv]g")}

    first = plot_folder(tmp_path)
    drawn = stamps()
    assert plot_folder(tmp_path) == first and stamps() == drawn  # nothing changed: nothing drawn

    results = pd.read_csv(tmp_path / "a" / "results.csv")
    results.loc[results["metric"] == "loss", "value"] += 0.01  # one study's rows change
    results.to_csv(tmp_path / "a" / "results.csv", index=False)
    assert plot_folder(tmp_path) == first
    again = stamps()
    assert all(again[f] != drawn[f] for f in drawn if f.startswith("a/"))
    assert all(again[f] == drawn[f] for f in drawn if f.startswith("b/"))

    (tmp_path / "b" / "figures" / "b_curves_torch.svg").unlink()  # a file gone: its set is drawn again
    plot_folder(tmp_path)
    assert all(stamps()[f] != again[f] for f in again if f.startswith("b/"))
    kept = stamps()
    plot_folder(tmp_path, redraw=True)
    assert all(stamps()[f] != kept[f] for f in kept)


def test_long_config_labels_leave_the_axes_their_room(tmp_path):
    """One framework, schedule labels 45 characters long: the legend gets its own width, no squeezed axes."""
    import warnings

    configs = [{"schedule": "warmup_cosine(eta_min=0.01,t_max=20,warmup_epochs=5)"},
               {"schedule": "multistep(gamma=0.5,milestones=15|30)"}]
    df = make_results("schedules", configs=configs, frameworks=("torch",), seeds=(0,), diverged=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns when constrained layout collapses an axes
        paths = plot_study(df, "schedules", ["curves", "lr", "steps"], tmp_path)
    assert {p.name for p in paths} >= {"schedules_curves_by_framework.png", "schedules_steps.png"}


def test_the_same_rows_draw_the_same_files(tmp_path):
    """Drawn twice from the same rows, every figure is byte for byte the same (a committed figure is redrawn only when
    its rows change, and then a fresh clone's `bench report` leaves the tree as it was): the epoch-1 dots' jitter too."""
    df = make_results(frameworks=("torch", "keras"), seeds=(0, 1, 2), epochs=3, weight_norms=False, step_rows=False)
    timed = df["metric"] == "epoch_seconds"
    df.loc[timed, "value"] += np.random.default_rng(1).uniform(0, 1, timed.sum())
    first = plot_study(df, "lr-sweep", ["curves"], tmp_path / "one") + plot_comparison(df, "lr-sweep", tmp_path / "one")
    np.random.uniform(size=7)  # whatever drew before (numpy's global generator, which seaborn jitters with)
    second = plot_study(df, "lr-sweep", ["curves"], tmp_path / "two") + plot_comparison(df, "lr-sweep", tmp_path / "two")
    assert [p.name for p in first] == [p.name for p in second] and any("epoch_seconds" in p.name for p in first)
    for a, b in zip(first, second):
        assert a.with_suffix(".svg").read_bytes() == b.with_suffix(".svg").read_bytes(), a.name


def test_a_user_study_gets_the_figures_its_file_asks_for_from_every_command(tmp_path):
    """`bench run` draws a user study's figures from its file; `bench plot` and `bench report`, which know only the
    bundled studies, read the same list from the folder's study.json (they once added a figure of their own)."""
    import json

    from bench.provenance import RECORD, record
    from bench.spec import parse_study

    small = dict(frameworks=("torch",), seeds=(0,), epochs=3, weight_norms=True, diverged=False)
    (tmp_path / "mine").mkdir()
    make_results(study="mine", **small).to_csv(tmp_path / "mine" / "results.csv", index=False)
    drawn_by_default = {p.name for p in plot_folder(tmp_path, {})}  # no record: every figure the rows can fill
    assert {"mine_steps.png", "mine_weight_norms.png"} <= drawn_by_default
    file = tmp_path / "mine.toml"
    file.write_text('name = "mine"\ndataset = "mnist"\nmodel = "lenet"\nepochs = 3\nbatch_size = 64\nlr = 0.1\n'
                    'figures = ["curves"]\n')
    study = parse_study(file.read_text(), file)
    (tmp_path / "mine" / RECORD).write_text(json.dumps(record(study, study.runs(["torch"]), "")))
    drawn = {p.name for p in plot_folder(tmp_path, {}, redraw=True)}
    assert "mine_curves_torch.png" in drawn and not {"mine_steps.png", "mine_weight_norms.png"} & drawn
