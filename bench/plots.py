"""Figures from the tidy results: learning curves of every config, side by side per framework.

The same config gets the same colour in every figure of a study, so a curve can be followed
from the per-framework figure to the faceted one and to the step and weight-norm figures.
"""

from __future__ import annotations

import io
import itertools
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on the machines that run the sweeps

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator, NullFormatter

from backends import REFERENCE_FRAMEWORK  # the registry: no framework is imported

from .configs import CONFIG_COLUMNS, config_labels, fold_identical
from .drawn import Drawn, fingerprint
from .provenance import folder_options, folder_study
from .results import COLUMNS, ROWS, atomic_write, read_manifests, read_study, study_folders, with_run_columns

CURVES = [("train", "accuracy"), ("train", "loss"), ("val", "accuracy"), ("val", "loss")]
APPLIED_LR = ("train", "lr")
WEIGHT_NORM = "weight_norm/"
DPI = 110
DASHES = ["", (4, 1.5), (1, 1), (3, 1.2, 1, 1.2), (6, 2)]  # one line style per framework
LOG_SPAN = 100  # a panel whose positive values span more than two decades gets a log y-axis


# --------------------------------------------------------------------------- helpers


def _title(df: pd.DataFrame, study: str, *suffix: str) -> str:
    what = ", ".join(", ".join(map(str, df[c].dropna().unique())) for c in ("dataset", "model"))
    return " — ".join([study, what, *suffix])


def _band(df: pd.DataFrame, spread: str = "±1 sd") -> str:
    """What a figure's bands are: a spread over seeds, or none when one seed ran."""
    seeds = df["seed"].nunique()
    return f"band: {spread} over {seeds} seeds" if seeds > 1 else "1 seed: no band"


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


def _legend_room(hue: tuple) -> float:
    """Inches the legend needs beside the axes, so that long config labels never squeeze them."""
    return 0.8 + 0.075 * max((len(c) for c in hue[0]), default=0)


def _legend(fig: plt.Figure, hue: tuple, title: str) -> None:
    fig.legend(handles=_legend_handles(*hue), title=title, loc="outside right center", frameon=False)


def _legend_handles(order: list[str], palette: dict) -> list:
    return [Line2D([], [], color=palette[c], label=c, lw=2) for c in order]


def _save(fig: plt.Figure, out_dir: Path, name: str, note: str = "") -> Path:
    """The figure as PNG and SVG; ``note`` ends its title (a quick run says so)."""
    if note:
        fig.suptitle(f"{fig.get_suptitle()} ({note})")
    out_dir.mkdir(parents=True, exist_ok=True)  # a folder reported without replotting has none yet
    png, svg = io.BytesIO(), io.BytesIO()  # each file whole or not at all: a stop mid-write leaves the old one
    fig.savefig(png, format="png", dpi=DPI, bbox_inches="tight")
    with plt.rc_context({"svg.hashsalt": name}):  # the same figure, the same file: no date, no random ids
        fig.savefig(svg, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    atomic_write(out_dir / f"{name}.svg", svg.getvalue())
    atomic_write(out_dir / f"{name}.png", png.getvalue())
    return out_dir / f"{name}.png"


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
    fig, axes = plt.subplots(len(panels), len(frameworks), figsize=(3.8 * len(frameworks) + _legend_room(hue), 2.6 * len(panels)),
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
    what = "running train loss (mean since the last log)" if (df["metric"] == "running_loss").all() else "train loss"
    size = (5 * len(frameworks) + _legend_room(hue), 3.8)
    fig, axes = plt.subplots(1, len(frameworks), figsize=size, sharey=True, squeeze=False,
                             layout="constrained")
    for ax, fw in zip(axes[0], frameworks):
        data = df[df["framework"] == fw]
        if not data.empty:
            _lines(ax, data, "step", hue, lw=1)
        ax.set(title=fw, ylabel=what)
        _style(ax)
    _log_if_wide(axes[0, 0], df["value"])
    fig.suptitle(_title(df, study, f"{what} per step"))
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


# --------------------------------------------------------------------------- framework comparison

# One colour, line dashes and marker per framework in every comparison figure, whatever frameworks a study has;
# a framework not named here gets a spare style (``_framework_styles``).
FRAMEWORK_STYLES = {
    "torch": ("#e4572e", "", "o"),
    "keras": ("#2e86ab", (4, 1.5), "s"),
    "keras-jax": ("#7b2cbf", (3, 1.2, 1, 1.2), "D"),
    "keras-torch": ("#f2a541", (6, 2), "v"),
    "paddle": ("#3bb273", (1, 1), "^"),
    "jax": ("#8c564b", (5, 1, 1, 1), "P"),
}
FRAMEWORK_PALETTE = {name: style[0] for name, style in FRAMEWORK_STYLES.items()}
FRAMEWORK_DASHES = {name: style[1] for name, style in FRAMEWORK_STYLES.items()}
FRAMEWORK_MARKERS = {name: style[2] for name, style in FRAMEWORK_STYLES.items()}
COMPARED = [("val", "accuracy"), ("val", "loss"), ("train", "loss")]
DIFFERENCES = [("val", "accuracy"), ("val", "loss")]
MAX_CONFIG_COLUMNS = 8
TITLE_WIDTH = 30  # characters per line of a config's subplot title


def _framework_styles(frameworks: list[str]) -> tuple[dict, dict, dict]:
    """Colours, dashes and markers for ``frameworks``; ones outside the fixed tables get spare grey-ish styles."""
    spare = iter(sns.color_palette("Dark2", 8))
    palette = {fw: FRAMEWORK_PALETTE.get(fw) or next(spare) for fw in frameworks}
    dashes = {fw: FRAMEWORK_DASHES.get(fw, DASHES[i % len(DASHES)]) for i, fw in enumerate(frameworks)}
    markers = {fw: FRAMEWORK_MARKERS.get(fw, "X") for fw in frameworks}
    return palette, dashes, markers


def _framework_handles(frameworks: list[str]) -> list:
    palette, dashes, markers = _framework_styles(frameworks)
    return [Line2D([], [], color=palette[fw], label=fw, lw=2, marker=markers[fw], markersize=5,
                   **({"dashes": dashes[fw]} if dashes[fw] else {})) for fw in frameworks]


def _nested_widths(frameworks: list[str]) -> dict:
    """Widest line first: frameworks that agree exactly then show as nested lines instead of a single one."""
    return {fw: max(2.6 - 0.6 * i, 1.0) for i, fw in enumerate(frameworks)}


def _frameworks(df: pd.DataFrame, reference: str) -> list[str]:
    """The reference first, then the known frameworks in table order, then any others as they appear."""
    seen = list(dict.fromkeys(df["framework"]))
    known = [fw for fw in FRAMEWORK_PALETTE if fw in seen and fw != reference]
    return ([reference] if reference in seen else []) + known + [fw for fw in seen if fw not in known + [reference]]


def _config_palette(order: list[str]) -> dict:
    return dict(zip(order, sns.color_palette("tab10" if len(order) <= 10 else "husl", len(order))))


def _wrap(label: str, width: int = TITLE_WIDTH) -> str:
    """Break a long config label after commas or spaces so subplot titles do not run into each other."""
    lines, line = [], ""
    for part in re.split(r"(?<=[, ])", label):
        if line and len(line) + len(part) > width:
            lines.append(line.rstrip())
            line = ""
        line += part
    return "\n".join(lines + [line.rstrip()])


def _widen_if_flat(ax: plt.Axes, values: pd.Series, rel: float = 1e-6) -> None:
    """Rounding-level spread (a constant lr in float32 vs float64, ~1e-8) should not fill the axis as if it mattered."""
    lo, hi = values.min(), values.max()
    if hi - lo <= rel * max(abs(lo), abs(hi)):
        pad = 0.1 * abs(hi) or 1.0
        ax.set_ylim(lo - pad, hi + pad)
    if ax.get_yscale() == "linear":
        ax.ticklabel_format(axis="y", useOffset=False)


def _pad_single_epoch(ax: plt.Axes, epochs: pd.Series) -> None:
    """One-epoch runs plot as lone markers: make them visible and the x-axis a single tick, not 0.95-1.05."""
    if epochs.nunique() == 1:
        ax.set_xlim(epochs.iloc[0] - 0.5, epochs.iloc[0] + 0.5)
        ax.set_xticks([epochs.iloc[0]])
        for line in ax.lines:
            line.set_markersize(line.get_markersize() * 1.6)


def _epoch_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Epoch-level rows of a finite study frame, labelled with configs computed across all frameworks."""
    df = _finite(df)
    if "config" not in df:
        df = df.assign(config=config_labels(df)[0]) if not df.empty else df.assign(config=pd.Series(dtype=str))
    return df[df["step"].isna()]


def paired_differences(df: pd.DataFrame, metric_split: str, metric: str, reference: str = REFERENCE_FRAMEWORK) -> pd.DataFrame:
    """value(framework) - value(reference) for the same config, seed and epoch.

    Pairing by seed removes the seed-to-seed spread that both frameworks share (same init and batches),
    so what is left is the frameworks' own disagreement. Columns: framework, config, seed, epoch, difference.
    """
    columns = ["framework", "config", "seed", "epoch", "difference"]
    rows = _select(_epoch_rows(df), metric_split, metric)
    keys = ["config", "seed", "epoch"]
    values = rows.groupby(["framework", *keys], sort=False, as_index=False)["value"].mean()
    ref = values[values["framework"] == reference].drop(columns="framework")
    paired = values[values["framework"] != reference].merge(ref, on=keys, suffixes=("", "_reference"))
    paired["difference"] = paired["value"] - paired["value_reference"]
    return paired[columns].reset_index(drop=True)


def _panel_name(split: str, metric: str) -> str:
    return "applied lr" if metric == "lr" else f"{split} {metric}"


def _overlaid(df, study, order, frameworks) -> plt.Figure:
    """Configs across (wrapped every MAX_CONFIG_COLUMNS), metrics down: frameworks on the same axes per config.
    Many configs, or runs of one epoch (a panel of one dot each), fold into the final values side by side."""
    if len(order) > MAX_CONFIG_COLUMNS or df["epoch"].nunique() == 1:
        return _finals(df, study, order, frameworks)
    panels = [p for p in COMPARED if not _select(df, *p).empty]
    ncols = min(len(order), MAX_CONFIG_COLUMNS)
    blocks = -(-len(order) // ncols)
    fig, axes = plt.subplots(blocks * len(panels), ncols, figsize=(3.3 * ncols + 1.2, 2.5 * blocks * len(panels)),
                             sharex=True, squeeze=False, layout="constrained")
    palette, dashes, markers = _framework_styles(frameworks)
    widths = _nested_widths(frameworks)
    for i, config in enumerate(order):
        block, col = divmod(i, ncols)
        for r, (split, metric) in enumerate(panels):
            ax = axes[block * len(panels) + r, col]
            data = _select(df[df["config"] == config], split, metric)
            if not data.empty:
                present = [fw for fw in frameworks if fw in set(data["framework"])]
                sns.lineplot(data=data, x="epoch", y="value", hue="framework", hue_order=present, palette=palette,
                             style="framework", style_order=present, dashes=dashes, markers=markers,
                             size="framework", size_order=present, sizes=widths, errorbar="sd", ax=ax, legend=False)
                for line in ax.lines:  # wider lines get bigger markers, so identical points stay nested, not hidden
                    line.set_markersize(1.5 + 2 * line.get_linewidth())
                _log_if_wide(ax, data["value"])
                _widen_if_flat(ax, data["value"], rel=1e-4)  # a tiny-lr run's loss barely moves off 2.3
            ax.set(title=_wrap(config) if r == 0 else None, ylabel=_panel_name(split, metric) if col == 0 else None)
            _style(ax)
            if not data.empty:
                _pad_single_epoch(ax, data["epoch"])
            ax.xaxis.set_tick_params(labelbottom=True)
    for ax in axes[-len(panels):, len(order) % ncols or ncols:].flat:
        ax.set_axis_off()
    fig.suptitle(_title(df, study, f"frameworks overlaid ({_band(df)})"))
    fig.legend(handles=_framework_handles(frameworks), title="framework", loc="outside right center", frameon=False)
    return fig


def _finals(df, study, order, frameworks) -> plt.Figure:
    """One panel per metric: each config's final value, the frameworks' points side by side."""
    panels = [p for p in COMPARED if not _select(df, *p).empty]
    last = df[df["epoch"] == df.groupby("run_id")["epoch"].transform("max")]
    palette, _, markers = _framework_styles(frameworks)
    present = [fw for fw in frameworks if fw in set(last["framework"])]
    fig, axes = plt.subplots(len(panels), 1, figsize=(max(6.0, 0.75 * len(order) + 2.5), 2.6 * len(panels) + 1.2),
                             sharex=True, squeeze=False, layout="constrained")
    for ax, (split, metric) in zip(axes[:, 0], panels):
        data = _select(last, split, metric)
        sns.pointplot(data=data, x="config", y="value", order=order, hue="framework", hue_order=present,
                      palette=palette, markers=[markers[fw] for fw in present], linestyles="none",
                      dodge=0.45 if len(present) > 1 else False, errorbar="sd" if data["seed"].nunique() > 1 else None,
                      ax=ax, legend=False)
        _log_if_wide(ax, data["value"])
        ax.set(ylabel=f"final {_panel_name(split, metric)}", xlabel=None)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xticks(range(len(order)), [_wrap(c, 18) for c in order], rotation=35, ha="right", fontsize=8)
    epochs = sorted(last["epoch"].unique())
    at = f"epoch {epochs[0]}" if len(epochs) == 1 else "each run's last epoch"
    bars = "whiskers: ±1 sd over seeds" if last["seed"].nunique() > 1 else "1 seed"
    fig.suptitle(_title(df, study, f"final values ({at}; {bars}), frameworks side by side"))
    fig.legend(handles=_framework_handles(present), title="framework", loc="outside right center", frameon=False)
    return fig


def _differences(diffs: dict, df, study, reference, order, frameworks) -> plt.Figure:
    """Metrics down, frameworks across; a shared y per metric so frameworks' gaps to the reference compare.

    Configs also differ in line style: configs that behave identically (a milestone past the last epoch)
    would otherwise hide each other.
    """
    others = [fw for fw in frameworks if fw != reference]
    width = max(4.2 * len(others), 7.0)
    legend_cols = max(1, min(len(order), int(width / (0.085 * max(map(len, order)) + 0.8))))
    legend_rows = -(-len(order) // legend_cols)
    fig, axes = plt.subplots(len(diffs), len(others), figsize=(width, 2.9 * len(diffs) + 0.3 * legend_rows),
                             sharex=True, sharey="row", squeeze=False, layout="constrained")
    palette, dashes = _config_palette(order), dict(zip(order, itertools.cycle(DASHES)))
    markers = dict(zip(order, itertools.cycle("osD^vXP*")))
    for r, ((split, metric), data) in enumerate(diffs.items()):
        for c, fw in enumerate(others):
            ax, rows = axes[r, c], data[data["framework"] == fw]
            ax.axhline(0, color="0.2", lw=0.8, zorder=1)
            if not rows.empty:
                present = [cfg for cfg in order if cfg in set(rows["config"])]
                sns.lineplot(data=rows, x="epoch", y="difference", hue="config", hue_order=present, palette=palette,
                             style="config", style_order=present, dashes=dashes, markers=markers, markersize=4,
                             errorbar="sd", lw=1.6, ax=ax, legend=False)
            ax.set(title=f"{fw} − {reference}" if r == 0 else None,
                   ylabel=f"Δ {_panel_name(split, metric)}" if c == 0 else None)
            _style(ax)
            if not rows.empty:
                _pad_single_epoch(ax, rows["epoch"])
            ax.xaxis.set_tick_params(labelbottom=True)
    fig.suptitle(_title(df, study, f"paired difference to {reference} (same seed, {_band(df)})"))
    handles = [Line2D([], [], color=palette[c], label=c, lw=2, marker=markers[c], markersize=5,
                      **({"dashes": dashes[c]} if dashes[c] else {})) for c in order]
    fig.legend(handles=handles, title=config_labels(df)[2], loc="outside lower center", ncols=legend_cols,
               frameon=False)
    return fig


def _epoch_seconds(df, study, frameworks) -> plt.Figure:
    """Steady-state epochs (from epoch 2) beside epoch 1, which also pays for compilation and warm-up."""
    models = list(dict.fromkeys(df["model"]))
    hue, order = ("model", models) if len(models) > 1 else ("framework", frameworks)
    palette = _config_palette(models) if hue == "model" else _framework_styles(frameworks)[0]
    fig, axes = plt.subplots(1, 2, figsize=(5.4 + 1.3 * len(frameworks) * len(order) ** 0.5, 4.1), squeeze=False,
                             layout="constrained")
    kw = dict(x="framework", y="value", order=frameworks, hue=hue, hue_order=order, palette=palette, legend=False)
    steady, first = df[df["epoch"] > 1], df[df["epoch"] == 1]
    ax = axes[0, 0]
    if not steady.empty:
        sns.barplot(data=steady, estimator="median", errorbar=("pi", 50), capsize=0.15, ax=ax, **kw)
        _label_medians(ax, steady, hue, order, frameworks)
    else:
        ax.text(0.5, 0.5, "single-epoch runs only", ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set(title="epochs ≥ 2: median\n(whiskers: 25–75 %)", xlabel=None, ylabel="seconds per epoch")
    ax = axes[0, 1]
    if not first.empty:
        state = np.random.get_state()  # seaborn jitters with numpy's global generator: the same figure every time
        np.random.seed(0)
        sns.stripplot(data=first, dodge=hue == "model", size=6, alpha=0.7, jitter=0.15, ax=ax, **kw)
        np.random.set_state(state)
        medians = first.groupby("framework")["value"].median()
        ax.set_xticks(range(len(frameworks)), [f"{fw}\nmedian {medians.get(fw, np.nan):.2f} s" for fw in frameworks])
    ax.set(title="epoch 1 (with warm-up),\none dot per run", xlabel=None, ylabel="seconds")
    for a in axes.flat:
        a.set_ylim(bottom=0)
        a.grid(alpha=0.3, axis="y")
    if hue == "model":
        fig.legend(handles=_legend_handles(order, palette), title="model", loc="outside right center", frameon=False)
    fig.suptitle(_title(df, study, "training time per epoch"))
    return fig


def _label_medians(ax: plt.Axes, steady: pd.DataFrame, hue: str, order: list[str], frameworks: list[str]) -> None:
    """Write each bar's median just above its upper whisker, where neither the whisker nor a short bar hides it."""
    keys = ["framework"] if hue == "framework" else ["framework", hue]
    upper = steady.groupby(keys)["value"].quantile(0.75)
    for level, bars in zip(order, ax.containers):
        for bar in bars:
            x, height = bar.get_x() + bar.get_width() / 2, bar.get_height()
            fw = frameworks[round(x)]
            key = fw if hue == "framework" else (fw, level)
            if np.isfinite(height) and key in upper.index:
                ax.annotate(f"{height:.2f} s", (x, max(height, upper[key])), xytext=(0, 3),
                            textcoords="offset points", ha="center", va="bottom", fontsize=8)
    ax.margins(y=0.12)


def _applied_lr(df, study, order, frameworks) -> plt.Figure:
    """One panel per config; frameworks drawn widest first so identical schedules stay visible on top of each other."""
    ncols = min(len(order), 4)
    nrows = -(-len(order) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols + 1.2, 2.9 * nrows), sharex=True, squeeze=False,
                             layout="constrained")
    palette, dashes, markers = _framework_styles(frameworks)
    widths = _nested_widths(frameworks)
    for ax, config in zip(axes.flat, order):
        data = df[df["config"] == config]
        means = data.groupby(["framework", "epoch"])["value"].mean()  # seeds share the schedule
        for i, fw in enumerate(fw for fw in frameworks if fw in means.index.get_level_values(0)):
            curve = means.loc[fw]
            lw = widths[fw] + 0.6
            ax.plot(curve.index, curve.values, color=palette[fw], lw=lw, marker=markers[fw], markersize=1.5 + 2 * lw,
                    markerfacecolor="none" if i == 0 else palette[fw], alpha=0.9, zorder=2 + i,
                    **({"dashes": dashes[fw]} if dashes[fw] else {}))
        _log_if_wide(ax, data["value"])
        _widen_if_flat(ax, data["value"])
        ax.set(title=_wrap(config), ylabel="applied lr" if ax in axes[:, 0] else None, xlabel="epoch")
        _style(ax)
        ax.xaxis.set_tick_params(labelbottom=True)
    for ax in axes.flat[len(order):]:
        ax.set_axis_off()
    fig.suptitle(_title(df, study, "lr applied per epoch"))
    fig.legend(handles=_framework_handles(frameworks), title="framework", loc="outside right center", frameon=False)
    return fig


SENSITIVITY = [("final val accuracy", "val", "accuracy", "last"), ("best val accuracy", "val", "accuracy", "max"),
               ("final train loss", "train", "loss", "last")]
GROUP_COLUMNS = tuple(c for c in CONFIG_COLUMNS if c != "lr")  # what else a config varies besides its lr


def lr_sensitivity(df: pd.DataFrame) -> pd.DataFrame:
    """Each run's final and best val accuracy and final train loss, for the configs that differ by lr alone.

    A group is the study's configs that share everything but the lr (optimizer, schedule, ...);
    groups with fewer than two lrs are left out. A diverged run's last finite epoch is its final.
    Columns: group, framework, seed, lr, measure, value.
    """
    epochs = _epoch_rows(df)
    if epochs.empty:
        return pd.DataFrame(columns=["group", "framework", "seed", "lr", "measure", "value"])
    runs = epochs.drop_duplicates("run_id").set_index("run_id")
    varying = [c for c in GROUP_COLUMNS if c in runs and runs[c].nunique(dropna=False) > 1]
    group = runs.apply(lambda r: " ".join(str(r[c]) for c in varying) or "all runs", axis=1)
    rows = []
    for measure, split, metric, how in SENSITIVITY:
        sel = _select(epochs, split, metric).sort_values("epoch")
        values = sel.groupby("run_id")["value"].agg(how)
        rows.append(pd.DataFrame({"group": group[values.index], "framework": runs.loc[values.index, "framework"],
                                  "seed": runs.loc[values.index, "seed"], "lr": runs.loc[values.index, "lr"].astype(float),
                                  "measure": measure, "value": values.values}))
    out = pd.concat(rows, ignore_index=True)
    lrs = out.groupby("group")["lr"].nunique()
    return out[out["group"].isin(lrs[lrs >= 2].index)].reset_index(drop=True)


MAX_SENSITIVITY_ROWS = 2  # groups of configs drawn a row each; more fold into lines of one panel per framework


def _lr_axis(ax: plt.Axes, data: pd.DataFrame, measure: str) -> None:
    ax.set_xscale("log")
    lrs = sorted(data["lr"].unique())
    ax.set_xticks(lrs, [f"{lr:g}" for lr in lrs])  # the study's own lrs, not decades it may not span
    ax.xaxis.set_minor_formatter(NullFormatter())
    if measure.endswith("loss"):
        _log_if_wide(ax, data["value"])
    ax.grid(alpha=0.3, which="both")


def _lr_line(ax: plt.Axes, rows: pd.DataFrame, color, marker: str, dashes, lw: float, alpha: float) -> None:
    """One line of an lr-sensitivity panel: the mean over seeds per lr, the band from their min to max."""
    points = rows.groupby("lr")["value"]
    if not len(points):
        return
    mean = points.mean()
    ax.plot(mean.index, mean.values, color=color, marker=marker, lw=lw, markersize=5, **({"dashes": dashes} if dashes else {}))
    if (points.size() > 1).any():
        ax.fill_between(mean.index, points.min().values, points.max().values, color=color, alpha=alpha)


def _lr_sensitivity_folded(table, df, study, frameworks, groups) -> plt.Figure:
    """Frameworks down, measures across: one line per group of configs, told apart by colour, marker and dash."""
    palette = _config_palette(groups)
    markers = dict(zip(groups, itertools.cycle("osD^vXP*")))
    dashes = dict(zip(groups, itertools.cycle(DASHES)))
    present = [fw for fw in frameworks if fw in set(table["framework"])]
    fig, axes = plt.subplots(len(present), len(SENSITIVITY), figsize=(3.6 * len(SENSITIVITY) + 0.6,
                             2.9 * len(present) + 0.35 * -(-len(groups) // 3) + 0.4), sharex=True, sharey="col",
                             squeeze=False, layout="constrained")  # a measure on one scale in every framework
    for row, fw in enumerate(present):
        for col, (measure, *_) in enumerate(SENSITIVITY):
            ax = axes[row, col]
            data = table[(table["framework"] == fw) & (table["measure"] == measure)]
            for name in groups:
                _lr_line(ax, data[data["group"] == name], palette[name], markers[name], dashes[name], 1.6, 0.12)
            _lr_axis(ax, data, measure)
            ax.set(xlabel="lr", title=measure if row == 0 else None, ylabel=fw if col == 0 else None)
            ax.xaxis.set_tick_params(labelbottom=True)
    handles = [Line2D([], [], color=palette[g], marker=markers[g], lw=1.6, label=g, **({"dashes": dashes[g]} if dashes[g]
               else {})) for g in groups]
    fig.legend(handles=handles, title="configs (besides their lr)", loc="outside lower center",
               ncols=min(3, len(groups)), frameon=False)
    seeds = df["seed"].nunique()
    fig.suptitle(_title(df, study, "lr sensitivity (mean" + (f"; band: min to max over {seeds} seeds)" if seeds > 1
                                                              else "; 1 seed)")))
    return fig


def _lr_sensitivity(table: pd.DataFrame, df: pd.DataFrame, study: str, frameworks: list[str]) -> plt.Figure:
    """Measures against lr on a log axis, one line per framework; the band spans the seeds (min to max)."""
    groups = list(dict.fromkeys(table["group"]))
    if len(groups) > MAX_SENSITIVITY_ROWS:
        return _lr_sensitivity_folded(table, df, study, frameworks, groups)
    palette, dashes, markers = _framework_styles(frameworks)
    fig, axes = plt.subplots(len(groups), len(SENSITIVITY), figsize=(3.6 * len(SENSITIVITY) + 1.2, 3.1 * len(groups)),
                             squeeze=False, layout="constrained")
    widths = _nested_widths(frameworks)
    for row, name in enumerate(groups):
        for col, (measure, *_) in enumerate(SENSITIVITY):
            ax = axes[row, col]
            data = table[(table["group"] == name) & (table["measure"] == measure)]
            for fw in frameworks:
                _lr_line(ax, data[data["framework"] == fw], palette[fw], markers[fw], dashes[fw], widths[fw], 0.15)
            _lr_axis(ax, data, measure)
            ax.set(xlabel="lr", title=measure if len(groups) == 1 else f"{measure}\n{_wrap(name)}")
    seeds = df["seed"].nunique()
    band = f"; band: min to max over {seeds} seeds" if seeds > 1 else "; 1 seed"
    which = f"{groups[0]}, " if len(groups) == 1 and groups[0] != "all runs" else ""
    fig.suptitle(_title(df, study, f"lr sensitivity ({which}mean{band})"))
    fig.legend(handles=_framework_handles(frameworks), title="framework", loc="outside right center", frameon=False)
    return fig


def plot_comparison(df: pd.DataFrame, study: str, out_dir: Path, reference: str = REFERENCE_FRAMEWORK,
                    note: str = "") -> list[Path]:
    """Framework-vs-framework figures of one study for the report; a figure without rows is skipped.

    Writes ``<study>_frameworks_overlaid``, ``_differences`` (vs ``reference``), ``_epoch_seconds``,
    when the lr moves within a run ``_applied_lr``, and when configs differ by lr alone ``_lr_sensitivity``,
    as PNG and SVG into ``out_dir``; returns the PNG paths.
    """
    epochs = _epoch_rows(df)
    if epochs.empty:
        return []
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _, order, _ = config_labels(epochs)
    frameworks = _frameworks(epochs, reference)
    paths = []

    compared = pd.concat([_select(epochs, *p) for p in COMPARED])
    if not compared.empty:
        fig = _overlaid(compared, study, order, frameworks)
        paths.append(_save(fig, out_dir, f"{study}_frameworks_overlaid", note))

    diffs = {p: paired_differences(epochs, *p, reference=reference) for p in DIFFERENCES}
    diffs = {p: d for p, d in diffs.items() if not d.empty}
    if diffs:
        fig = _differences(diffs, epochs, study, reference, order, frameworks)
        paths.append(_save(fig, out_dir, f"{study}_differences", note))

    seconds = epochs[epochs["metric"] == "epoch_seconds"]
    if not seconds.empty:
        present = [fw for fw in frameworks if fw in set(seconds["framework"])]
        paths.append(_save(_epoch_seconds(seconds, study, present), out_dir, f"{study}_epoch_seconds", note))

    lr = _select(epochs, *APPLIED_LR)
    if (lr.groupby("run_id")["value"].nunique() > 1).any():
        present = [cfg for cfg in order if cfg in set(lr["config"])]
        paths.append(_save(_applied_lr(lr, study, present, frameworks), out_dir, f"{study}_applied_lr", note))

    sensitivity = lr_sensitivity(epochs)
    if not sensitivity.empty:
        present = [fw for fw in frameworks if fw in set(sensitivity["framework"])]
        paths.append(_save(_lr_sensitivity(sensitivity, epochs, study, present), out_dir, f"{study}_lr_sensitivity", note))
    return paths


# --------------------------------------------------------------------------- entry points


def plot_study(df: pd.DataFrame, study: str, figures: list[str], out_dir: Path, note: str = "") -> list[Path]:
    """Write the study's figures as PNG and SVG into ``out_dir``; a figure with no rows is skipped; ``note`` ends
    each title.

    Returns the PNG paths.
    """
    df = _finite(df)
    if df.empty:
        return []
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    labels, order, title = config_labels(df)
    df = df.assign(config=labels)
    hue = (order, _config_palette(order))
    frameworks = _frameworks(df, REFERENCE_FRAMEWORK)  # the reference first, as in every comparison figure
    epochs, steps = df[df["step"].isna()], df[df["step"].notna()]
    paths = []

    if "curves" in figures:
        panels = CURVES + ([APPLIED_LR] if "lr" in figures else [])
        curves = pd.concat([_select(epochs, *p) for p in panels])
        for fw in frameworks:
            rows = curves[curves["framework"] == fw]
            if not rows.empty:
                paths.append(_save(_curves_one(rows, study, fw, panels, hue, title), out_dir, f"{study}_curves_{fw}", note))
        if not curves.empty:
            fig = _curves_faceted(curves, study, panels, hue, title, frameworks)
            paths.append(_save(fig, out_dir, f"{study}_curves_by_framework", note))

    step_loss = _select(steps, "train", "loss")
    step_loss = _select(steps, "train", "running_loss") if step_loss.empty else step_loss  # log_at = "running"
    if "steps" in figures and not step_loss.empty:
        paths.append(_save(_steps(step_loss, study, hue, title, frameworks), out_dir, f"{study}_steps", note))

    norms = epochs[epochs["metric"].str.startswith(WEIGHT_NORM)]
    if "weight_norms" in figures and not norms.empty:
        paths.append(_save(_weight_norms(norms, study, hue, title, frameworks), out_dir, f"{study}_weight_norms", note))
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


def plot_folder(folder: Path, figures_for: dict[str, list[str]] | None = None, redraw: bool = False) -> list[Path]:
    """Every figure of every study under ``folder`` (a results folder or one study's folder), in ``<study>/figures/``.

    A set of figures whose rows, figures and drawing code are those it was drawn from is kept as it is
    (bench/drawn.py), unless ``redraw``."""
    folder = Path(folder)
    paths = []
    for where in study_folders(folder):
        df = with_run_columns(read_study(where, ROWS, COLUMNS), read_manifests(where))
        drawn = Drawn(where / "figures")
        note = "quick" if folder_options(where)[1] else ""
        recorded = folder_study(where, "")[0]  # a user's study: the figures its file asks for, as `bench run` drew them
        for (study, protocol), rows in df.groupby(["study", "protocol"], sort=False):
            figures = (figures_for or {}).get(study)
            if figures is None and recorded and recorded.name == study:
                figures = recorded.figures
            figures = default_figures(rows) if figures is None else figures
            name = study if protocol == "fresh" else f"{study}_{protocol}"  # one set of figures per protocol
            digest = fingerprint(rows, figures)
            kept = None if redraw else drawn.current(name, digest)
            if kept is not None:
                paths += kept
                continue
            rows, _ = fold_identical(rows)  # a config that is another's run is drawn once, under both names
            drew = (plot_study(rows, name, figures, where / "figures", note)
                    + plot_comparison(rows, name, where / "figures", note=note))
            drawn.record(name, digest, drew)
            paths += drew
    return paths


def plot_find_lr(df: pd.DataFrame, study: str, out_dir: Path, reference: str = REFERENCE_FRAMEWORK) -> Path:
    """The LR range test's figure, as PNG and SVG in ``out_dir``; returns the PNG's path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return _save(_find_lr_figure(df, study, reference), out_dir, f"{study}_find_lr")


def _find_lr_figure(df: pd.DataFrame, study: str, reference: str) -> plt.Figure:
    """Loss against lr (log axis) per framework, raw and smoothed, each framework's suggestions marked; beside
    it, when another framework ran, each one's loss relative to the reference's, step by step."""
    from .find_lr import AGREE, STOP, suggest  # the rules live with the test

    FLOOR = 1e-9  # float32 rounding of a loss near 2 is about 1e-7

    frameworks = _frameworks(df, reference)
    palette, dashes, markers = _framework_styles(frameworks)
    widths = _nested_widths(frameworks)
    curves = {fw: df[df["framework"] == fw].pivot_table(index="step", columns="metric", values="value")
              for fw in frameworks}
    compared = reference in curves and len(frameworks) > 1  # else no panel against the reference: nothing to draw in it
    if compared:
        fig, (ax, diff) = plt.subplots(1, 2, figsize=(11.5, 4.2), layout="constrained", width_ratios=(1.6, 1))
    else:
        fig, ax = plt.subplots(figsize=(7.5, 4.2), layout="constrained")
    for fw in frameworks:
        c = curves[fw]
        ax.plot(c["lr"], c["loss"], color=palette[fw], lw=0.8, alpha=0.3)
        ax.plot(c["lr"], c["smoothed_loss"], color=palette[fw], lw=widths[fw], **({"dashes": dashes[fw]} if dashes[fw] else {}))
        s = suggest(c.reset_index())
        for rule, marker in (("steepest", markers[fw]), ("minimum / 10", "|")):
            at = c["lr"].sub(s[rule]).abs().idxmin() if rule == "steepest" else None
            y = c.loc[at, "smoothed_loss"] if at is not None else np.interp(np.log(s[rule]), np.log(c["lr"]),
                                                                              c["smoothed_loss"])
            ax.plot([s[rule]], [y], marker=marker, color=palette[fw], markersize=9 if marker == "|" else 7,
                    markeredgewidth=2, linestyle="none")
        if compared and fw != reference:
            ref = curves[reference]
            shared = c.index.intersection(ref.index)
            rel = (c.loc[shared, "loss"] - ref.loc[shared, "loss"]).abs() / ref.loc[shared, "loss"].abs()
            diff.plot(ref.loc[shared, "lr"], rel.clip(lower=FLOOR), color=palette[fw], lw=1.4, drawstyle="steps-mid",
                      **({"dashes": dashes[fw]} if dashes[fw] else {}))
    ax.set(xscale="log", xlabel="lr (grows each step)", ylabel="train loss (faint: raw; bold: smoothed)",
           title="loss against lr, each framework's suggestions marked")
    ax.legend(handles=[Line2D([], [], color="0.3", marker=markers[frameworks[0]], linestyle="none", markersize=7,
                              label="steepest descent (the framework's marker)"),
                       Line2D([], [], color="0.3", marker="|", linestyle="none", markersize=9, markeredgewidth=2,
                              label="minimum / 10")], loc="upper left", fontsize=8, frameon=False)
    smooth = df[df["metric"] == "smoothed_loss"]["value"]
    raw = df[df["metric"] == "loss"]["value"]
    low = min(smooth.min(), raw[np.isfinite(raw)].min())
    top = min(STOP * smooth[np.isfinite(smooth)].min(), 1.15 * smooth[np.isfinite(smooth)].max())  # the stop rule's reach
    ax.set_ylim(low - 0.05 * abs(low), top)
    if compared:
        diff.set(xscale="log", yscale="log", xlabel="lr", ylabel=f"|loss - {reference}'s| / {reference}'s",
                 title=f"against {reference}, step by step (floor {FLOOR:g}; dotted {AGREE:g})")
        diff.axhline(AGREE, color="0.5", lw=0.8, ls=":")
        diff.set_ylim(bottom=FLOOR / 2)
        diff.grid(alpha=0.3, which="both")
    ax.grid(alpha=0.3, which="both")
    first = df.iloc[0]
    fig.suptitle(f"{study} — {first['dataset']}, {first['model']}, {first['optimizer']}, batch {first['batch_size']}: "
                 f"LR range test")
    fig.legend(handles=_framework_handles(frameworks), title="framework", loc="outside right center", frameon=False)
    return fig
