"""Figures from the tidy results: learning curves of every config, side by side per framework.

The same config gets the same colour in every figure of a study, so a curve can be followed
from the per-framework figure to the faceted one and to the step and weight-norm figures.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on the machines that run the sweeps

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

CONFIG_COLUMNS = ("model", "optimizer", "schedule", "lr", "batch_size")
NUMERIC_CONFIG = ("lr", "batch_size")  # bare numbers need their name; labels like "adam" do not
CURVES = [("train", "accuracy"), ("train", "loss"), ("val", "accuracy"), ("val", "loss")]
APPLIED_LR = ("train", "lr")
WEIGHT_NORM = "weight_norm/"
DPI = 110
DASHES = ["", (4, 1.5), (1, 1), (3, 1.2, 1, 1.2), (6, 2)]  # one line style per framework
LOG_SPAN = 100  # a panel whose positive values span more than two decades gets a log y-axis


# --------------------------------------------------------------------------- configs


def config_labels(df: pd.DataFrame) -> tuple[pd.Series, list[str], str]:
    """Label each row by what varies between the study's runs (seed and framework aside).

    Returns the per-row labels, the configs in legend order and the legend title.
    """
    runs = df.drop_duplicates("run_id").set_index("run_id")
    varying = [c for c in CONFIG_COLUMNS if runs[c].nunique(dropna=False) > 1] or ["optimizer"]

    def label(run: pd.Series) -> str:
        parts = [f"{c}={float(run[c]):g}" if c in NUMERIC_CONFIG else str(run[c]) for c in varying]
        return " ".join(parts)

    run_labels = runs.apply(label, axis=1)
    # Group by the text columns in order of first appearance, the largest lr first inside each group.
    keys = pd.DataFrame({c: pd.factorize(runs[c])[0] for c in varying if c != "lr"}, index=runs.index)
    if "lr" in varying:
        keys["lr"] = -runs["lr"].astype(float)
    ordered = run_labels.loc[keys.sort_values(list(keys.columns), kind="stable").index]
    return df["run_id"].map(run_labels), list(dict.fromkeys(ordered)), ", ".join(varying)


# --------------------------------------------------------------------------- helpers


def _title(df: pd.DataFrame, study: str, *suffix: str) -> str:
    what = ", ".join(", ".join(map(str, df[c].dropna().unique())) for c in ("dataset", "model"))
    return " — ".join([study, what, *suffix])


def _finite(df: pd.DataFrame) -> pd.DataFrame:
    """Diverged runs log NaN/inf; drop those rows so the rest of the run still plots."""
    values = pd.to_numeric(df["value"], errors="coerce")
    return df.assign(value=values)[np.isfinite(values)]


def _select(df: pd.DataFrame, split: str, metric: str) -> pd.DataFrame:
    return df[(df["split"] == split) & (df["metric"] == metric)]


def _log_if_wide(ax: plt.Axes, values: pd.Series) -> None:
    positive = values[values > 0]
    if len(positive) and values.min() > 0 and positive.max() / positive.min() > LOG_SPAN:
        ax.set_yscale("log")


def _lines(ax, data, x, hue, style=None, **kw) -> None:
    sns.lineplot(data=data, x=x, y="value", hue="config", hue_order=hue[0], palette=hue[1],
                 style=style, errorbar="sd", ax=ax, legend=False, **kw)


def _style(ax: plt.Axes) -> None:
    ax.grid(alpha=0.3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs and steps are whole numbers


def _legend(fig: plt.Figure, hue: tuple, title: str) -> None:
    fig.legend(handles=_legend_handles(*hue), title=title, loc="outside right center", frameon=False)


def _legend_handles(order: list[str], palette: dict) -> list:
    return [Line2D([], [], color=palette[c], label=c, lw=2) for c in order]


def _save(fig: plt.Figure, out_dir: Path, name: str) -> Path:
    png = out_dir / f"{name}.png"
    fig.savefig(png, dpi=DPI, bbox_inches="tight")
    fig.savefig(out_dir / f"{name}.svg", bbox_inches="tight")
    plt.close(fig)
    return png


# --------------------------------------------------------------------------- figures


def _curves_one(df, study, framework, panels, hue, title) -> plt.Figure:
    """2x2 grid of train/val accuracy/loss; with the applied lr, a 2x3 grid with the legend in the last slot."""
    ncols = 3 if APPLIED_LR in panels else 2
    fig, axes = plt.subplots(2, ncols, figsize=(4.6 * ncols, 7), sharex=True, squeeze=False, layout="constrained")
    slots = {p: axes[i // 2, i % 2] for i, p in enumerate(CURVES)} | {APPLIED_LR: axes[0, 2] if ncols == 3 else None}
    for split, metric in panels:
        ax, data = slots[(split, metric)], _select(df, split, metric)
        if data.empty:
            ax.set_axis_off()
            continue
        _lines(ax, data, "epoch", hue)
        _log_if_wide(ax, data["value"])
        ax.set(title="applied lr" if metric == "lr" else f"{split} {metric}", ylabel=None)
        _style(ax)
        ax.xaxis.set_tick_params(labelbottom=True)
    handles = _legend_handles(*hue)
    fig.suptitle(_title(df, study, framework))
    if ncols == 3:
        axes[1, 2].set_axis_off()
        axes[1, 2].legend(handles=handles, title=title, loc="center", frameon=False)
    else:
        _legend(fig, hue, title)
    return fig


def _curves_faceted(df, study, panels, hue, title, frameworks) -> plt.Figure:
    """Rows are the metrics, columns the frameworks; a shared y per row makes frameworks comparable."""
    fig, axes = plt.subplots(len(panels), len(frameworks), figsize=(3.8 * len(frameworks) + 0.5, 2.6 * len(panels)),
                             sharex=True, sharey="row", squeeze=False, layout="constrained")
    for r, (split, metric) in enumerate(panels):
        row = _select(df, split, metric)
        for c, fw in enumerate(frameworks):
            ax, data = axes[r, c], row[row["framework"] == fw]
            if not data.empty:
                _lines(ax, data, "epoch", hue)
            ax.set(ylabel=("applied lr" if metric == "lr" else f"{split} {metric}") if c == 0 else None,
                   title=fw if r == 0 else None)
            _style(ax)
        if not row.empty:
            _log_if_wide(axes[r, 0], row["value"])
    fig.suptitle(_title(df, study, "by framework"))
    _legend(fig, hue, title)
    return fig


def _steps(df, study, hue, title, frameworks) -> plt.Figure:
    fig, axes = plt.subplots(1, len(frameworks), figsize=(5 * len(frameworks), 3.8), sharey=True, squeeze=False,
                             layout="constrained")
    for ax, fw in zip(axes[0], frameworks):
        data = df[df["framework"] == fw]
        if not data.empty:
            _lines(ax, data, "step", hue, lw=1)
        ax.set(title=fw, ylabel="train loss")
        _style(ax)
    _log_if_wide(axes[0, 0], df["value"])
    fig.suptitle(_title(df, study, "train loss per step"))
    _legend(fig, hue, title)
    return fig


def _weight_norms(df, study, hue, title, frameworks) -> plt.Figure:
    layers = list(dict.fromkeys(df["metric"]))
    ncols = min(3, len(layers))
    nrows = -(-len(layers) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.4 * ncols, 3.4 * nrows), sharex=True, squeeze=False,
                             layout="constrained")
    dashes = dict(zip(frameworks, itertools.cycle(DASHES)))
    for ax, layer in zip(axes.flat, layers):
        _lines(ax, df[df["metric"] == layer], "epoch", hue, style="framework", style_order=frameworks, dashes=dashes)
        ax.set(title=layer.removeprefix(WEIGHT_NORM), ylabel="L2 norm")
        _style(ax)
        ax.xaxis.set_tick_params(labelbottom=True)
    for ax in axes.flat[len(layers):]:
        ax.set_axis_off()
    styles = [Line2D([], [], color="0.3", label=fw, **({"dashes": d} if d else {})) for fw, d in dashes.items()]
    fig.suptitle(_title(df, study, "weight L2 norm per layer"))
    _legend(fig, hue, title)
    fig.legend(handles=styles, title="framework", loc="outside lower center", ncols=len(styles), frameon=False)
    return fig


# --------------------------------------------------------------------------- entry points


def plot_study(df: pd.DataFrame, study: str, figures: list[str], out_dir: Path) -> list[Path]:
    """Write the study's figures as PNG and SVG into ``out_dir``; a figure with no rows is skipped.

    Returns the PNG paths.
    """
    df = _finite(df)
    if df.empty:
        return []
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    labels, order, title = config_labels(df)
    df = df.assign(config=labels)
    palette = dict(zip(order, sns.color_palette("tab10" if len(order) <= 10 else "husl", len(order))))
    hue = (order, palette)
    frameworks = list(dict.fromkeys(df["framework"]))
    epochs, steps = df[df["step"].isna()], df[df["step"].notna()]
    paths = []

    if "curves" in figures:
        panels = CURVES + ([APPLIED_LR] if "lr" in figures else [])
        curves = pd.concat([_select(epochs, *p) for p in panels])
        for fw in frameworks:
            rows = curves[curves["framework"] == fw]
            if not rows.empty:
                paths.append(_save(_curves_one(rows, study, fw, panels, hue, title), out_dir, f"{study}_curves_{fw}"))
        if not curves.empty:
            fig = _curves_faceted(curves, study, panels, hue, title, frameworks)
            paths.append(_save(fig, out_dir, f"{study}_curves_by_framework"))

    step_loss = _select(steps, "train", "loss")
    if "steps" in figures and not step_loss.empty:
        paths.append(_save(_steps(step_loss, study, hue, title, frameworks), out_dir, f"{study}_steps"))

    norms = epochs[epochs["metric"].str.startswith(WEIGHT_NORM)]
    if "weight_norms" in figures and not norms.empty:
        paths.append(_save(_weight_norms(norms, study, hue, title, frameworks), out_dir, f"{study}_weight_norms"))
    return paths


def default_figures(df: pd.DataFrame) -> list[str]:
    """Every figure the rows can fill: steps and weight norms when logged, the lr panel when it moves."""
    figures = ["curves"]
    lr = _select(df[df["step"].isna()], *APPLIED_LR)
    if (lr.groupby("run_id")["value"].nunique() > 1).any():
        figures.append("lr")
    if df["step"].notna().any():
        figures.append("steps")
    if df["metric"].str.startswith(WEIGHT_NORM).any():
        figures.append("weight_norms")
    return figures


def plot_folder(folder: Path, figures_for: dict[str, list[str]] | None = None) -> list[Path]:
    """Plot every study under ``folder`` (a results folder or one study's folder) into ``<study>/figures/``."""
    folder = Path(folder)
    csvs = [folder / "results.csv"] if (folder / "results.csv").exists() else sorted(folder.glob("*/results.csv"))
    paths = []
    for csv in csvs:
        df = pd.read_csv(csv)
        for study, rows in df.groupby("study", sort=False):
            figures = (figures_for or {}).get(study)
            figures = default_figures(rows) if figures is None else figures
            paths += plot_study(rows, study, figures, csv.parent / "figures")
    return paths
