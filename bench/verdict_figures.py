"""The report's evidence at a glance, one figure per study (and protocol), drawn from its answers.

Left: each framework's paired difference from the reference per config, its 90% interval (*same* is
judged by it) inside its 95% one (*differs*), the margin shaded: which shifts lie inside what matters.
Right: every seed x framework final value per config, so the spread behind every verdict is visible.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from .answers import COLUMN, FAILED, StudyAnswer, metric_words
from .plots import FRAMEWORK_MARKERS, FRAMEWORK_PALETTE, _save

VERDICTS = "_verdicts"  # the figure's name ends so
SCALE = {"accuracy": (100, "points"), "loss": (1, "")}


def _scale(metric: str) -> tuple[float, str]:
    return SCALE["accuracy"] if metric.endswith("accuracy") else SCALE["loss"]


def _as_shown(values: pd.Series, metric: str) -> tuple[pd.Series, str]:
    """The final values as the dots show them, and the axis label. Spanning more than a decade (a 99% config beside
    a 50% one), an accuracy is shown as its error rate and a loss as it is, on a log scale, so both ends stay legible."""
    if metric.endswith("accuracy"):
        error = 100 * (1 - values)
        if error.min() > 0 and error.max() / error.min() > 10:
            return error, f"final {metric_words(metric).replace('accuracy', 'error')} (100 − accuracy, %), log scale"
        return 100 * values, f"final {metric_words(metric)} (%)"
    if values.min() > 0 and values.max() / values.min() > 10:
        return values, f"final {metric_words(metric)}, log scale"
    return values, f"final {metric_words(metric)}"


def draw_verdicts(a: StudyAnswer, runs: pd.DataFrame, name: str, title: str, out_dir: Path) -> Path | None:
    """``<name>_verdicts.png`` in ``out_dir``; None when nothing ran that the figure could show."""
    metric = a.primary
    present = set(runs["config"].astype(str))
    order = list(runs["config"].cat.categories) if isinstance(runs["config"].dtype, pd.CategoricalDtype) else []
    configs = [str(c) for c in order if str(c) in present] or list(dict.fromkeys(runs["config"].astype(str)))
    if not configs or a.ranking is None:  # no config trained in every run: nothing to show beside the failures
        return None
    factor, unit = _scale(metric)
    effects = a.effects.get(metric, {})
    height = 1.2 + 0.42 * len(configs)
    fig, (forest, dots) = plt.subplots(1, 2, figsize=(12, height), sharey=True, layout="constrained",
                                       width_ratios=(1, 1) if effects else (0.001, 1))
    y = {c: i for i, c in enumerate(configs)}
    frameworks = list(effects)
    offset = {fw: (i - (len(frameworks) - 1) / 2) * 0.18 for i, fw in enumerate(frameworks)}
    margin = a.margins[metric] * factor
    forest.axvspan(-margin, margin, color="0.88", zorder=0)
    forest.axvline(0, color="0.4", lw=0.8)
    drawn = 0
    for fw, fa in effects.items():
        for config, c in fa.comparisons.items():
            if np.isnan(c.low):
                continue
            drawn += 1
            at = y[config] + offset[fw]
            color = FRAMEWORK_PALETTE.get(fw, "0.3")
            forest.plot([c.low * factor, c.high * factor], [at, at], color=color, lw=1)
            forest.plot([c.inner[0] * factor, c.inner[1] * factor], [at, at], color=color, lw=3.5, alpha=0.6)
            forest.plot([c.mean * factor], [at], marker=FRAMEWORK_MARKERS.get(fw, "o"), color=FRAMEWORK_PALETTE.get(fw, "0.3"),
                        markersize=6, linestyle="none")
            forest.annotate(c.verdict, (1.0, at), xycoords=("axes fraction", "data"), xytext=(3, 0),
                            textcoords="offset points", fontsize=7, va="center", color="0.3")
    if effects and not drawn:
        forest.text(0.5, 0.5, f"{a.seeds} seed{'s' if a.seeds != 1 else ''}: no interval to draw",
                    transform=forest.transAxes, ha="center", va="center", color="0.3")
    forest.set(xlabel=f"framework − {a.reference} ({unit or 'its units'}): mean, 90% (thick) and 95% interval",
               title=f"paired by seed; grey: the ±{margin:g} margin")
    if not effects:
        forest.set_axis_off()
    ok = runs[~runs["status"].isin(FAILED) & ~runs["config"].astype(str).isin(list(a.failing))]
    shown, label = _as_shown(ok[COLUMN[metric]], metric)
    if label.endswith("log scale"):  # 1, 2, 5 in each decade, written as plain numbers
        dots.set_xscale("log")
        dots.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
        dots.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
        dots.xaxis.set_minor_formatter(NullFormatter())
    for fw, g in ok.groupby("framework", sort=False):
        values = shown[g.index]
        jitter = (g["seed"].astype(float) % 5 - 2) * 0.04
        dots.scatter(values, g["config"].astype(str).map(y) + jitter, s=14, alpha=0.8, label=fw,
                     color=FRAMEWORK_PALETTE.get(fw, "0.3"), marker=FRAMEWORK_MARKERS.get(fw, "o"))
    for config, by in a.failing.items():
        failed = sum(n for n, _ in by.values())
        dots.annotate(f"{failed} of {sum(t for _, t in by.values())} runs failed: a failure of the config, not shown",
                      (0.5, y[config]), xycoords=("axes fraction", "data"), ha="center", va="center", fontsize=8,
                      color="#a01010")
    dots.axhspan(y[a.ranking.best] - 0.4, y[a.ranking.best] + 0.4, color="#d9f2d9", zorder=0)
    dots.set(xlabel=label, title="every seed × framework (green: the config to use)")
    fig.legend(handles=[Line2D([], [], color=FRAMEWORK_PALETTE.get(fw, "0.3"), marker=FRAMEWORK_MARKERS.get(fw, "o"),
                                linestyle="none", label=fw) for fw in dict.fromkeys(ok["framework"])],
                loc="outside right center", frameon=False, fontsize=8)
    forest.set_yticks(range(len(configs)), [a.name(c) for c in configs], fontsize=8)
    forest.invert_yaxis()
    for ax in (forest, dots):
        ax.grid(alpha=0.3, axis="x")
    fig.suptitle(title, fontsize=10)
    return _save(fig, Path(out_dir), f"{name}{VERDICTS}")
