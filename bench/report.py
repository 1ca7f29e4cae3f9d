"""The report a user reads: does the framework change the answer, and how sure are we?

Built from the CSVs and manifests alone, so `bench report DIR` regenerates it anywhere.
Per study: a summary per config and framework, paired per-seed differences against a
reference framework with 95% bootstrap intervals and a verdict, and the study's claims
evaluated per framework with the numbers behind them. Written as report.md and as a
self-contained report.html (figures embedded).
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from backends import REFERENCE_FRAMEWORK

from .claims import FILTERS, evaluate_claims, select
from .plots import config_labels, plot_folder
from .provenance import folder_study
from .results import COLUMNS, atomic_write, read_combined, read_manifests, read_results, with_run_columns
from .spec import bundled_figures

REFERENCE = REFERENCE_FRAMEWORK
BOOTSTRAP = 10_000
# A difference counts only when its interval excludes zero and its mean is beyond these
# margins: half a point of accuracy (the parity tolerance), 2% of the reference's loss.
ACCURACY_MARGIN = 0.005
LOSS_MARGIN = 0.02


# ---------------------------------------------------------------- per-run numbers


def per_run(df: pd.DataFrame, manifest: pd.DataFrame, target: float | None = None) -> pd.DataFrame:
    """One row per run, those without rows (failed) too: its config, framework, seed and the numbers
    the tables summarise (n/a where a run has none)."""
    epochs = df[df["step"].isna()]
    entries = manifest.drop_duplicates("run_id", keep="last")
    rowless = entries[~entries["run_id"].isin(epochs["run_id"])]
    described = pd.concat([epochs.drop_duplicates("run_id"), rowless], ignore_index=True)
    labels, order, _ = config_labels(described)
    epochs = epochs.assign(config=epochs["run_id"].map(dict(zip(described["run_id"], labels))))
    if epochs.empty:  # nothing but runs without rows
        return _rowless(described.assign(config=labels), entries, order)
    wide = epochs.pivot_table(index=["run_id", "epoch"], columns=["split", "metric"], values="value")
    wide.columns = [f"{s}_{m}" for s, m in wide.columns]
    wide = wide.reset_index().sort_values(["run_id", "epoch"])
    groups = wide.groupby("run_id")
    last = groups.last()
    best = wide.loc[wide["val_accuracy"].fillna(-1).groupby(wide["run_id"]).idxmax()].set_index("run_id")
    runs = described.assign(config=labels).set_index("run_id")[list(RUN_COLUMNS)]
    out = runs.join(pd.DataFrame({
        "final_val_accuracy": last["val_accuracy"],
        "final_val_loss": last["val_loss"],
        "final_train_loss": last["train_loss"],
        "best_val_accuracy": best["val_accuracy"],
        "best_epoch": best["epoch"],
        "epochs": last["epoch"],
        "median_epoch_seconds": wide[wide["epoch"] > 1].groupby("run_id")["train_epoch_seconds"].median(),
        "first_epoch_seconds": wide[wide["epoch"] == 1].set_index("run_id")["train_epoch_seconds"],
    }))
    if target is not None:
        reached = wide[wide["val_accuracy"] >= target].groupby("run_id")["epoch"].min()
        out["epochs_to_target"] = reached
    return _with_status(out, entries, order)


RUN_COLUMNS = ("config", "framework", "framework_version", "device", "model", "seed")


def _rowless(described: pd.DataFrame, entries: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    return _with_status(described.set_index("run_id")[list(RUN_COLUMNS)], entries, order)


def _with_status(out: pd.DataFrame, entries: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    entries = entries.set_index("run_id")
    out["status"] = entries["status"].reindex(out.index).fillna("unknown")
    errors = entries["error"].astype(object).fillna("").astype(str) if "error" in entries else pd.Series(dtype=str)
    out["error"] = errors.reindex(out.index, fill_value="")
    out["epochs_done"] = entries["epochs_done"].reindex(out.index) if "epochs_done" in entries else np.nan
    out["epochs_planned"] = entries["epochs"].reindex(out.index) if "epochs" in entries else np.nan
    out["config"] = pd.Categorical(out["config"], categories=order, ordered=True)
    return out.reset_index()


def _mean_std(values: pd.Series, digits: int = 4) -> str:
    values = values.dropna()
    if values.empty:
        return "n/a"
    if len(values) == 1:
        return f"{values.iloc[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std():.{digits}f}"


def _median(values: pd.Series) -> str:
    return f"{values.median():.2f}" if values.notna().any() else "n/a"


def summary_table(runs: pd.DataFrame, target: float | None) -> pd.DataFrame:
    for column in ("final_val_accuracy", "best_val_accuracy", "best_epoch", "final_train_loss", "final_val_loss",
                   "median_epoch_seconds", "first_epoch_seconds", "epochs_to_target"):
        if column not in runs:
            runs = runs.assign(**{column: np.nan})
    rows = []
    for (config, framework), g in runs.groupby(["config", "framework"], observed=True, sort=True):
        row = {
            "config": config,
            "framework": framework,
            "seeds": len(g),
            "final val acc": _mean_std(g["final_val_accuracy"]),
            "best val acc": _mean_std(g["best_val_accuracy"]),
            "best epoch": _mean_std(g["best_epoch"], 1),
        }
        if target is not None:
            reached = g["epochs_to_target"].dropna()
            row[f"epochs to {target:g}"] = f"{reached.mean():.1f} ({len(reached)}/{len(g)})" if len(reached) else "never"
        row.update({
            "final train loss": _mean_std(g["final_train_loss"]),
            "final val loss": _mean_std(g["final_val_loss"]),
            "status": ", ".join(f"{n} {s}" for s, n in g["status"].value_counts().items()),
            "epoch s (median)": _median(g["median_epoch_seconds"]),
            "first epoch s": _median(g["first_epoch_seconds"]),
            "device": g["device"].iloc[0],
            "version": g["framework_version"].iloc[0],
        })
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- framework differences


@dataclass
class Difference:
    mean: float
    low: float
    high: float
    seeds: int
    verdict: str


def bootstrap_difference(differences: np.ndarray, margin: float, seed: int = 0) -> Difference:
    """Mean paired difference, its 95% bootstrap interval over seeds, and agree/differ."""
    d = np.asarray(differences, dtype=float)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(BOOTSTRAP, len(d)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    excludes_zero = low > 0 or high < 0
    verdict = "differ" if excludes_zero and abs(d.mean()) > margin else "agree"
    return Difference(float(d.mean()), float(low), float(high), len(d), verdict)


def difference_table(runs: pd.DataFrame, reference: str = REFERENCE) -> pd.DataFrame:
    """Per config and framework: final val accuracy and loss minus the reference's, paired by seed."""
    if reference not in set(runs["framework"]):
        return pd.DataFrame()
    ref = runs[runs["framework"] == reference]
    rows = []
    for (config, framework), g in runs[runs["framework"] != reference].groupby(["config", "framework"], observed=True):
        paired = g.merge(ref, on=["config", "seed"], suffixes=("", "_ref"))
        if paired.empty:
            continue
        acc = bootstrap_difference(paired["final_val_accuracy"] - paired["final_val_accuracy_ref"], ACCURACY_MARGIN)
        loss_margin = LOSS_MARGIN * float(paired["final_val_loss_ref"].abs().mean())
        loss = bootstrap_difference(paired["final_val_loss"] - paired["final_val_loss_ref"], loss_margin)
        rows.append({
            "config": config, "framework": f"{framework} - {reference}", "seeds": acc.seeds,
            "Δ final val acc": f"{acc.mean:+.4f} [{acc.low:+.4f}, {acc.high:+.4f}]", "acc verdict": acc.verdict,
            "Δ final val loss": f"{loss.mean:+.4f} [{loss.low:+.4f}, {loss.high:+.4f}]", "loss verdict": loss.verdict,
        })
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- the document


def study_blocks(study_dir: Path, root: Path) -> list[tuple[str, object]]:
    """The report's section for one study folder, as (kind, content) blocks: every run it holds, failed ones too."""
    df, manifest = read_results(study_dir), read_manifests(study_dir)
    if df.empty and manifest.empty:
        return []
    df = with_run_columns(df, manifest)
    first = (df if len(df) else manifest).iloc[0]
    spec, missing = folder_study(study_dir, first["study"])
    target = spec.target if spec else None
    runs = per_run(df, manifest, target)
    models = sorted(set(pd.concat([df["model"], manifest["model"]]).dropna().astype(str)))
    blocks = [("h2", f"{study_dir.name}: {first['dataset']}, {', '.join(models)}")]
    if spec and spec.description:
        blocks.append(("p", spec.description))
    if missing:
        blocks.append(("p", f"**Note**: {missing}."))
    blocks += [("h3", "Per config and framework"), ("table", summary_table(runs, target))]
    flagged = runs[runs["status"].isin(["diverged", "collapsed", "failed"])]
    if len(flagged):
        blocks += [("h3", "Runs that did not finish, or collapsed"), ("table", flagged_table(flagged))]
    if df.empty:
        return blocks
    runs = runs[runs["status"] != "failed"]
    blocks += [("h3", "Ordering by final val loss (lowest first)"), ("list", val_loss_ordering(runs))]
    diffs = difference_table(runs)
    if len(diffs):
        blocks += [("h3", f"Framework differences (paired by seed, against {REFERENCE})"),
                   ("p", f"Mean of the per-seed differences with its 95% bootstrap interval over seeds. A pair "
                         f"differs when the interval excludes zero and the mean is beyond {ACCURACY_MARGIN:g} of accuracy "
                         f"or {LOSS_MARGIN:.0%} of the reference's loss; with one seed the interval is that one difference."),
                   ("table", diffs)]
    if spec and spec.reference:
        blocks += [("h3", "The original vs lrbench"),
                   ("p", "The numbers the original experiment printed, beside lrbench's at the same epoch (or step) "
                         "and config, mean over seeds; 'within' when the difference is inside the tolerance the study "
                         "file states."),
                   ("table", reference_table(spec.reference, df))]
    if spec and spec.claims:
        claims = evaluate_claims(spec.claims, df, manifest)
        blocks += [("h3", "Claims"),
                   ("p", "source: seed = the original experiment says it; lrbench = lrbench's own claim.")]
        if "protocol" in claims:
            blocks += [("p", "Which claims hold under which protocol, per framework:"), ("table", claims_at_a_glance(claims))]
        blocks += [("table", claims)]
    figures = sorted((study_dir / "figures").glob("*.png"))
    if figures:
        blocks += [("h3", "Figures")] + [("img", p.relative_to(root)) for p in figures]
    return blocks


def flagged_table(flagged: pd.DataFrame) -> pd.DataFrame:
    """The runs that failed, diverged or collapsed, with how far they got and their error."""
    return pd.DataFrame({
        "status": flagged["status"], "framework": flagged["framework"], "config": flagged["config"].astype(str),
        "seed": flagged["seed"],
        "epochs": [f"{d:g} of {p:g}" if pd.notna(d) and pd.notna(p) else "n/a"
                   for d, p in zip(flagged["epochs_done"], flagged["epochs_planned"])],
        "error": flagged["error"].fillna("").astype(str).replace("", "-"),
    })


def claims_at_a_glance(claims: pd.DataFrame) -> pd.DataFrame:
    """One row per claim, one column per framework and protocol: the verdicts side by side."""
    short = claims.assign(verdict=claims["verdict"].str.split(":").str[0],
                          where=claims["framework"] + " " + claims["protocol"])
    table = short.pivot_table(index=["claim", "source"], columns="where", values="verdict", aggfunc="first", sort=False)
    return table.reset_index().rename_axis(columns=None)


def val_loss_ordering(runs: pd.DataFrame) -> list[str]:
    """Per framework: the configs from the lowest final val loss (mean over seeds) to the highest."""
    means = runs.groupby(["framework", "config"], observed=True)["final_val_loss"].mean()
    return [f"{framework}: " + " < ".join(f"{config} ({loss:.4f})" for config, loss in g.droplevel(0).sort_values().items())
            for framework, g in means.groupby(level=0)]


def reference_table(reference: list[dict], df: pd.DataFrame) -> pd.DataFrame:
    """One row per printed number of the original: its value, tolerance and each framework's."""
    rows = []
    frameworks = sorted(df["framework"].unique(), key=lambda f: (f != REFERENCE, f))
    fresh = df[df["protocol"] == "fresh"] if "protocol" in df else df
    for entry in reference:
        split, metric = entry["metric"].split(".", 1)
        rows_here = fresh[(fresh["split"] == split) & (fresh["metric"] == metric) & (fresh["epoch"] == entry["epoch"])]
        rows_here = rows_here[rows_here["step"] == entry["step"]] if "step" in entry else rows_here[rows_here["step"].isna()]
        where = entry.get("where", {})
        rows_here = select(rows_here, where)
        at = f"epoch {entry['epoch']}" + (f", step {entry['step']}" if "step" in entry else "")
        row = {"metric": entry["metric"], "config": ", ".join(f"{k}={v}" for k, v in where.items()) or "-",
               "at": at, "original": f"{entry['value']:g}", "tolerance": f"±{entry['tolerance']:g}"}
        for framework in frameworks:
            mine = rows_here[rows_here["framework"] == framework]
            configs = len(mine.drop_duplicates("run_id")[list(FILTERS)].drop_duplicates())
            if configs > 1:  # a mean over several configs would be nobody's number
                row[framework] = f"cannot tell: matches {configs} configs, add a filter to where"
                continue
            values = mine["value"]
            if values.empty:
                row[framework] = "not run"
                continue
            ours = float(values.mean())
            within = "within" if abs(ours - entry["value"]) <= entry["tolerance"] else "outside"
            row[framework] = f"{ours:.4f} ({ours - entry['value']:+.4f}, {within})"
        rows.append(row)
    return pd.DataFrame(rows)


def _markdown(blocks, root: Path) -> str:
    out = []
    for kind, content in blocks:
        if kind in ("h1", "h2", "h3"):
            out.append("#" * int(kind[1]) + " " + content)
        elif kind == "p":
            out.append(content)
        elif kind == "table":
            out.append(content.to_markdown(index=False))
        elif kind == "list":
            out.append("\n".join(f"- {item}" for item in content))
        elif kind == "img":
            out.append(f"![{Path(content).stem}]({content})")
        out.append("")
    return "\n".join(out)


def _html(blocks, root: Path) -> str:
    body = []
    for kind, content in blocks:
        if kind in ("h1", "h2", "h3"):
            body.append(f"<{kind}>{html.escape(content)}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{html.escape(content)}</p>")
        elif kind == "table":
            body.append(content.to_html(index=False, border=0, classes="t"))
        elif kind == "list":
            items = "".join(f"<li>{html.escape(i).replace('**', '')}</li>" for i in content)
            body.append(f"<ul>{items}</ul>")
        elif kind == "img":
            data = base64.b64encode((root / content).read_bytes()).decode()
            body.append(f'<figure><img alt="{html.escape(Path(content).stem)}" src="data:image/png;base64,{data}"></figure>')
    style = ("body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}"
             "table.t{border-collapse:collapse;font-size:13px;margin:.5em 0}"
             "table.t td,table.t th{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left}"
             "img{max-width:100%}")
    return f"<!doctype html><meta charset=utf-8><title>lrbench report</title><style>{style}</style>\n" + "\n".join(body)


def find_lr_blocks(folder: Path, root: Path) -> list[tuple[str, object]]:
    """The section of one `bench find-lr` folder: the rules, each framework's suggestions side by side, the figure."""
    from .find_lr import CHUNK, FAILED, SMOOTHING, STOP, compare
    from .plots import plot_find_lr

    study = folder.name.removesuffix("-find-lr")
    fix = f"run `bench find-lr {study}` again"
    df = read_combined(folder / "find-lr.csv", COLUMNS, len(COLUMNS), fix)
    failed = read_combined(folder / FAILED, ["framework", "error"], 2, fix) if (folder / FAILED).exists() else None
    did_not_run = [] if failed is None or failed.empty else [
        ("p", "Did not run: " + "; ".join(f"{r.framework} ({r.error})" for r in failed.itertuples()))]
    if df.empty:
        return []
    frameworks = list(dict.fromkeys(df["framework"]))
    reference = REFERENCE if REFERENCE in frameworks else frameworks[0]
    lrs = df[df["metric"] == "lr"]["value"]
    first = df.iloc[0]
    figure = plot_find_lr(df, study, folder / "figures", reference)  # from the CSV alone, as every figure
    return [("h2", f"{folder.name}: LR range test, {first['dataset']}, {first['model']}, {first['optimizer']}"),
            ("p", f"The lr grows by a constant factor per step from {lrs.min():.3g} to at most {lrs.max():.3g}, from the "
                  f"same weights and batches in every framework; the loss is smoothed (moving average {SMOOTHING}, "
                  f"bias-corrected) and the test stops once the smoothed loss is above {STOP:g}x its minimum (checked "
                  f"every {CHUNK} steps). Suggestions: steepest = the lr where the smoothed loss falls fastest per decade "
                  f"of lr, before its minimum; minimum / 10 = a tenth of the lr at its lowest. Grid steps count the "
                  f"test's own lrs between a framework's suggestion and {reference}'s."),
            *did_not_run, ("table", compare(df, reference)), ("img", figure.relative_to(root))]


def write_report(folder: Path, replot: bool = True) -> Path:
    """report.md and report.html for every study folder (and `bench find-lr` folder) under ``folder``; returns the .md path.

    ``replot``: draw every figure again from the CSVs (``bench report``); ``bench all`` has just drawn
    those of the studies it ran and skips it (a folder it did not run keeps the figures it has)."""
    folder = Path(folder)
    if replot:
        plot_folder(folder, bundled_figures())  # the figures, too, come from the CSVs alone
    find_dirs = sorted(p.parent for p in folder.glob("*/find-lr.csv"))
    study_dirs = [p.parent for p in sorted(folder.glob("*/results.csv"))] or ([] if find_dirs else [folder])
    blocks: list = [("h1", "lrbench report"),
                    ("p", "Generated by `bench report` from the results CSVs and manifests in this folder.")]
    for study_dir in study_dirs:
        blocks += study_blocks(study_dir, folder)
    for find_dir in find_dirs:
        blocks += find_lr_blocks(find_dir, folder)
    atomic_write(folder / "report.html", _html(blocks, folder))
    path = folder / "report.md"
    atomic_write(path, _markdown(blocks, folder))
    return path
