"""The report a user reads: which config is best, does the framework change that answer, and how sure are we?

Built from the CSVs and manifests alone, so `bench report DIR` regenerates it anywhere. It opens
with the answers (answers.py) per study and protocol, each with its evidence (evidence.py), what
ran (ran.py) and the studies `bench all` skipped; then per study the details: a summary per config
and framework, the framework differences, the original's numbers beside lrbench's, the claims, and
the figures in reading order. Written as report.md and as a self-contained report.html.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from backends import REFERENCE_FRAMEWORK

from .answers import best_table, claim_counts, framework_effect, lower_is_better, overview_row, rankings, winner_line
from .claims import FILTERS, evaluate_claims, select
from .configs import config_labels, fold_identical
from .evidence import MIN_SEEDS, rank
from .plots import plot_folder
from .provenance import folder_options, folder_study
from .ran import banner, cannot_answer, ordered_frameworks, what_ran
from .results import (
    LATER_DEFAULTS,
    LEGACY_COLUMNS,
    atomic_write,
    read_combined,
    read_manifests,
    read_results,
    study_folders,
    with_run_columns,
)
from .spec import PRIMARY, bundled_figures

REFERENCE = REFERENCE_FRAMEWORK
SKIPPED = "skipped.csv"  # `bench all`: the studies it could not run, and why


# ---------------------------------------------------------------- per-run numbers


def per_run(df: pd.DataFrame, manifest: pd.DataFrame, target: float | None = None) -> pd.DataFrame:
    """One row per run, those without rows (failed) too: its config, framework, seed and the numbers
    the tables summarise (n/a where a run has none)."""
    epochs = df[df["step"].isna()]
    entries = manifest.drop_duplicates("run_id", keep="last")
    rowless = entries[~entries["run_id"].isin(epochs["run_id"])]
    described = pd.concat([epochs.drop_duplicates("run_id"), rowless], ignore_index=True).fillna(LATER_DEFAULTS)
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
        "final_train_accuracy": last["train_accuracy"] if "train_accuracy" in last else np.nan,
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


RUN_COLUMNS = ("config", "protocol", "framework", "framework_version", "device", "model", "seed")


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
    mean = values.mean()
    form = ".3g" if 0 < abs(mean) < 10 ** -(digits - 1) else f".{digits}f"  # a train loss near zero: not "0.0000"
    return f"{mean:{form}}" if len(values) == 1 else f"{mean:{form}} ± {values.std():{form}}"


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


# ---------------------------------------------------------------- the document


@dataclass
class StudyFolder:
    """One study folder read once: its rows (``df``: identical configs folded, for rankings and tables; ``rows``:
    as recorded, for claims and the original's numbers, which name configs as the study does), runs, definition."""

    dir: Path
    df: pd.DataFrame
    rows: pd.DataFrame
    manifest: pd.DataFrame
    runs: pd.DataFrame
    spec: object
    missing: str
    options: str
    quick: bool
    identical: list

    @classmethod
    def read(cls, study_dir: Path) -> StudyFolder | None:
        df, manifest = read_results(study_dir), read_manifests(study_dir)
        if df.empty and manifest.empty:
            return None
        df = with_run_columns(df, manifest)
        first = (df if len(df) else manifest).iloc[0]
        spec, missing = folder_study(study_dir, first["study"])
        folded, identical = fold_identical(df) if len(df) else (df, [])
        dropped = set(df["run_id"]) - set(folded["run_id"])
        manifest_kept = manifest[~manifest["run_id"].isin(dropped)]
        runs = per_run(folded, manifest_kept, spec.target if spec else None)
        order = ordered_frameworks(runs["framework"])
        runs = runs.iloc[runs["framework"].map(order.index).argsort(kind="stable")]
        if "protocol" not in manifest:
            manifest = manifest.assign(protocol="fresh")
        return cls(Path(study_dir), folded, df, manifest, runs, spec, missing, *folder_options(study_dir), identical)

    @property
    def protocols(self) -> list[str]:
        return list(dict.fromkeys(self.runs["protocol"].astype(object).fillna("fresh")))

    def part(self, protocol: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The runs and manifest entries of one protocol."""
        runs = self.runs[self.runs["protocol"].astype(object).fillna("fresh") == protocol]
        manifest = self.manifest[self.manifest["protocol"].astype(object).fillna("fresh") == protocol]
        return runs, manifest

    def title(self, protocol: str) -> str:
        return self.dir.name + ("" if len(self.protocols) < 2 else f", {protocol} protocol")

    def claims(self) -> pd.DataFrame:
        """The study's claims per framework (and protocol); on a quick run, those without quick = true are not evaluated."""
        if not (self.spec and self.spec.claims) or self.df.empty:
            return pd.DataFrame()
        table = evaluate_claims(self.spec.claims, self.rows, self.manifest)
        if self.quick:
            off = {c["text"] for c in self.spec.claims if not c.get("quick")}
            table.loc[table["claim"].isin(off), "verdict"] = "not evaluated at quick size (a smoke test)"
        return table


def answer_blocks(folder: StudyFolder, claims: pd.DataFrame) -> tuple[list[tuple[str, object]], list[dict]]:
    """The study's answers, per protocol: what ran, best per framework with ties, same winner, framework effect;
    and a row of the report's overview per protocol."""
    spec = folder.spec
    primary = spec.primary if spec else PRIMARY[0]
    margin = spec.margin if spec else None
    blocks: list = []
    overview: list = []
    for protocol in folder.protocols:
        runs, manifest = folder.part(protocol)
        these = claims[claims["protocol"] == protocol] if "protocol" in claims else claims
        ran = what_ran(manifest, folder.quick)
        blocks += [("h3", folder.title(protocol)), ("p", ran.text())]
        warning = banner(ran, spec)
        if warning:
            blocks.append(("p", warning))
        blocks += [("p", line) for line in cannot_answer(ran, spec.name if spec else folder.dir.name, folder.options)]
        for group in (g for g in folder.identical if " = ".join(g) in set(runs["config"].astype(str))):
            blocks.append(("p", f"{' = '.join(group)}: the same run here (the same optimizer and the same applied lr at "
                                f"every epoch and logged step, train losses equal): ranked and drawn once."))
        done = runs[runs["status"] != "failed"]
        ranked = rankings(done, primary, margin)
        if not ranked:
            blocks.append(("p", "No run finished: nothing to rank."))
            continue
        best = "lowest" if lower_is_better(primary) else "highest"
        winner = winner_line(ranked)
        blocks += [("p", f"Best config per framework by final {primary} ({best} is best"
                         + (f"; the study's margin is {margin:g}" if margin else "") + "):"),
                   ("table", best_table(done, ranked, primary)), ("p", winner)]
        effect = framework_effect(done, primary, margin, REFERENCE)
        if len(effect):
            blocks += [("p", f"Framework effect beside the seed effect (final {primary}, paired by seed against "
                             f"{REFERENCE}):"), ("table", effect)]
        counts = claim_counts(these)
        if counts:
            blocks += [("p", "Claims:"), ("list", counts)]
        ran_text = ran.short() + (": not the study as written" if warning and not ran.quick else "")
        overview.append(overview_row(folder.title(protocol), ran_text, ranked, winner, effect, these))
    return blocks, overview


def detail_blocks(folder: StudyFolder, claims: pd.DataFrame, root: Path) -> list[tuple[str, object]]:
    """The study's section: every run it holds, failed ones too, the numbers behind the answers, the figures."""
    df, runs, spec = folder.df, folder.runs, folder.spec
    first = (df if len(df) else folder.manifest).iloc[0]
    models = sorted(set(pd.concat([df["model"], folder.manifest["model"]]).dropna().astype(str)))
    blocks = [("h2", f"{folder.dir.name}: {first['dataset']}, {', '.join(models)}")]
    if spec and spec.description:
        blocks.append(("p", "The study as its file defines it: " + spec.description))
    if folder.missing:
        blocks.append(("p", f"**Note**: {folder.missing}."))
    blocks += [("h3", "Per config and framework"), ("table", summary_table(runs, spec.target if spec else None))]
    flagged = runs[runs["status"].isin(["diverged", "collapsed", "failed"])]
    if len(flagged):
        blocks += [("h3", "Runs that did not finish, or collapsed"), ("table", flagged_table(flagged))]
    if df.empty:
        return blocks
    margin = spec.margin if spec else None
    for protocol in folder.protocols:
        done = folder.part(protocol)[0]
        done = done[done["status"] != "failed"]
        where = "" if len(folder.protocols) < 2 else f", {protocol} protocol"
        ordering = ordering_lines(done, margin)
        if ordering:
            blocks += [("h3", f"Ordering by final val loss (lowest first){where}"), ("list", ordering)]
        tables = [(m, framework_effect(done, m, margin if spec and m == spec.primary else None, REFERENCE))
                  for m in ("val.accuracy", "val.loss")]
        tables = [(m, t) for m, t in tables if len(t)]
        if tables:
            blocks.append(("h3", f"Framework differences{where} (paired by seed, against {REFERENCE})"))
            for metric, table in tables:
                blocks += [("p", f"final {metric}:"), ("table", table)]
    if spec and spec.reference:
        blocks += [("h3", "The original vs lrbench"),
                   ("p", "The numbers the original experiment printed, beside lrbench's at the same epoch (or step) "
                         "and config, mean over seeds; 'within' when the difference is inside the tolerance the study "
                         "file states."),
                   ("table", reference_table(spec.reference, folder.rows))]
    if len(claims):
        blocks += [("h3", "Claims"),
                   ("p", "source: who says it, as the study file gives it; in the bundled studies seed = the original "
                         "experiment (its words, or the numbers it prints, as the claim's text says) and lrbench = "
                         "lrbench's own claim. A comparison holds only beyond its margin "
                         "(the claim's own, else the seed spread from 3 seeds); otherwise: cannot tell.")]
        if "protocol" in claims:
            blocks += [("p", "Which claims hold under which protocol, per framework:"), ("table", claims_at_a_glance(claims))]
        blocks += [("table", claims)]
    figures = sorted((folder.dir / "figures").glob("*.png"), key=_reading_order)
    if figures:
        blocks += [("h3", "Figures")] + [("img", p.relative_to(root)) for p in figures]
    return blocks


# Figures in reading order: the curves, then the differences between frameworks, then the lr, then timing.
FIGURE_ORDER = ("_curves", "_frameworks_overlaid", "_steps", "_weight_norms", "_differences", "_applied_lr",
                "_lr_sensitivity", "_epoch_seconds")


def _reading_order(path: Path) -> tuple:
    return next((i for i, k in enumerate(FIGURE_ORDER) if k in path.stem), len(FIGURE_ORDER)), path.name


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


def ordering_lines(runs: pd.DataFrame, margin: float | None = None) -> list[str]:
    """Per framework: the configs from the lowest final val loss (mean over seeds) to the highest; ``≈`` where
    a config cannot be separated from the one before it (evidence.rank), ``<`` where it can."""
    lines = []
    for framework, g in runs.groupby("framework", sort=False):
        values = {str(c): r.groupby("seed")["final_val_loss"].mean().dropna() for c, r in g.groupby("config", observed=True)}
        values = {c: v for c, v in values.items() if len(v)}
        means = sorted(values, key=lambda c: values[c].mean())
        if not means:
            continue
        text = f"{means[0]} ({values[means[0]].mean():.4f})"
        for before, config in zip(means, means[1:]):
            ties = rank({before: values[before], config: values[config]}, True, margin).ties
            sign = "<" if ties == [] else "≈"
            text += f" {sign} {config} ({values[config].mean():.4f})"
        lines.append(f"{framework}: {text}")
    if lines and runs["seed"].nunique() < 2 and not margin:
        lines.append("≈: cannot be separated (one seed and no margin separates nothing); <: separated by the seeds' "
                     "intervals or the study's margin.")
    else:
        lines.append("≈: cannot be separated by the seeds' 95% intervals or the study's margin; <: separated.")
    return lines


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


def _slug(title: str) -> str:
    """The anchor GitHub gives a heading, so the contents link in report.md and report.html alike."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def _contents(blocks) -> list[str]:
    return [f"[{c}](#{_slug(c)})" for kind, c in blocks if kind == "h2"]


def _markdown(blocks, root: Path) -> str:
    out = []
    for kind, content in blocks:
        if kind in ("h1", "h2", "h3"):
            out.append("#" * int(kind[1]) + " " + content)
        elif kind == "p":
            out.append(content)
        elif kind == "table":
            out.append(content.to_markdown(index=False, floatfmt=".4g"))
        elif kind == "list":
            out.append("\n".join(f"- {item}" for item in content))
        elif kind == "img":
            out.append(f"![{Path(content).stem}]({content})")
        out.append("")
    return "\n".join(out)


VERDICT_CLASS = {"held": "good", "agree": "good", "yes": "good", "not held": "bad", "differ": "bad", "no": "bad",
                 "cannot tell": "unsure", "not evaluated": "unsure"}
_VERDICT = re.compile(r"(^|: |\*\*)(not held|held|differ|agree|cannot tell|not evaluated|yes|no)(?=\*\*|\b)")


def _inline(text: str) -> str:
    """report.md's inline markup as HTML: `code`, **bold**, [text](link); verdict words coloured."""
    text = html.escape(str(text), quote=False)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    text = _VERDICT.sub(lambda m: f'{m[1]}<span class="v {VERDICT_CLASS[m[2]]}">{m[2]}</span>', text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    text = re.sub(r"(?<![\w*])\*([^*\s][^*]*?)\*(?![\w*])", r"<em>\1</em>", text)
    return re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r'<a href="\2">\1</a>', text)


def _cell(value) -> str:
    if isinstance(value, float):
        return "n/a" if np.isnan(value) else f"{value:.4g}"  # as report.md's tables round them
    return _inline(value)


def _table_html(table: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    rows = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in table.itertuples(index=False))
    return f'<table class="t"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


STYLE = ("body{font-family:system-ui,sans-serif;max-width:1200px;margin:auto;padding:1em;line-height:1.4;color:#222}"
         "h2{border-bottom:2px solid #ccc;padding-bottom:.2em;margin-top:2em}"
         "table.t{border-collapse:collapse;font-size:13px;margin:.5em 0}"
         "table.t td,table.t th{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}"
         "table.t th{background:#f4f4f4}code{background:#f4f4f4;padding:0 3px}"
         ".v{font-weight:600;padding:0 3px;border-radius:3px}.good{background:#d9f2d9;color:#145214}"
         ".bad{background:#f9dcdc;color:#7a1010}.unsure{background:#fff1c2;color:#6b5200}"
         "img{max-width:100%}nav li{margin:.1em 0}")


def _html(blocks, root: Path) -> str:
    body = []
    for kind, content in blocks:
        if kind in ("h1", "h2", "h3"):
            body.append(f'<{kind} id="{_slug(content)}">{html.escape(content)}</{kind}>')
        elif kind == "p":
            body.append(f"<p>{_inline(content)}</p>")
        elif kind == "table":
            body.append(_table_html(content))
        elif kind == "list":
            body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in content) + "</ul>")
        elif kind == "img":
            data = base64.b64encode((root / content).read_bytes()).decode()
            body.append(f'<figure><img alt="{html.escape(Path(content).stem)}" src="data:image/png;base64,{data}"></figure>')
    return (f"<!doctype html><html lang=en><meta charset=utf-8><title>lrbench report</title><style>{STYLE}</style>"
            f"<body>\n" + "\n".join(body) + "\n</body></html>\n")


def rules_text() -> str:
    """The verdict rules, said once in the report (evidence.py holds them)."""
    return (f"How to read the verdicts. Intervals are 95% t-intervals over seeds (scipy.stats). Frameworks are compared "
            f"paired by seed (same initial weights, same batches) from {MIN_SEEDS} seeds (with 2, the spread between "
            f"seeds would be a single difference); below that a comparison is "
            f"*cannot tell (n seeds)*, never *differ*. *differ*: the interval of the difference excludes zero and the "
            f"difference is beyond the spread between seeds (or the study's margin); *agree*: the whole interval lies "
            f"within that spread (or margin); *cannot tell*: neither. A config is tied with the best when their "
            f"intervals overlap or it is within the study's margin. A claim's comparison holds only beyond its margin "
            f"(its own, else the seed spread from {MIN_SEEDS} seeds). docs/verdicts.md says why.")


def read_skipped(folder: Path) -> pd.DataFrame:
    """The studies `bench all` skipped, with the reason and what fixes it (its skipped.csv); none: empty."""
    path = folder / SKIPPED
    if not path.exists():
        return pd.DataFrame(columns=["study", "reason"])
    return read_combined(path, ["study", "reason"], 2, "run `bench all` again")


def skipped_blocks(skipped: pd.DataFrame) -> list[tuple[str, object]]:
    if skipped.empty:
        return []
    return [("h2", "Skipped studies"),
            ("p", f"`bench all` could not run these ({len(skipped)}); each line says what is missing and how to fix it:"),
            ("list", [f"{r.study}: {r.reason}" for r in skipped.itertuples()])]


def find_lr_blocks(folder: Path, root: Path) -> list[tuple[str, object]]:
    """The section of one `bench find-lr` folder: the rules, each framework's suggestions side by side, the figure."""
    from .find_lr import CHUNK, FAILED, MANIFEST, SMOOTHING, STOP, check_written, compare
    from .plots import plot_find_lr

    study = folder.name.removesuffix("-find-lr")
    fix = f"run `bench find-lr {study}` again"
    df = read_combined(folder / "find-lr.csv", LEGACY_COLUMNS, len(LEGACY_COLUMNS), fix)
    if (folder / MANIFEST).exists():  # folders from before it have their rows alone
        check_written(df, (folder / MANIFEST).read_text(), folder / "find-lr.csv", fix)
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
    table = compare(df, reference)
    unclear = [("p", f"**{fw}: {why}**. Its suggestions below are not a recommendation.")
               for fw, why in zip(table["framework"], table["clear minimum"]) if why != "yes"]
    return [("h2", f"{folder.name}: LR range test, {first['dataset']}, {first['model']}, {first['optimizer']}"),
            ("p", f"The lr grows by a constant factor per step from {lrs.min():.3g} to at most {lrs.max():.3g}, from the "
                  f"same weights and batches in every framework; the loss is smoothed (moving average {SMOOTHING}, "
                  f"bias-corrected) and the test stops once the smoothed loss is above {STOP:g}x its minimum (checked "
                  f"every {CHUNK} steps). Suggestions: steepest = the lr where the smoothed loss falls fastest per decade "
                  f"of lr, before its minimum; minimum / 10 = a tenth of the lr at its lowest. Grid steps count the "
                  f"test's own lrs between a framework's suggestion and {reference}'s."),
            *did_not_run, *unclear, ("table", table), ("img", figure.relative_to(root))]


def write_report(folder: Path, replot: bool = True, redraw: bool = False) -> Path:
    """report.md and report.html for every study folder (and `bench find-lr` folder) under ``folder``; returns the .md path.

    ``replot``: bring every figure up to date with the CSVs (``bench report``; ``redraw``: draw them all
    again); ``bench all`` has just done so for the studies it ran and skips it (a folder it did not run
    keeps the figures it has)."""
    folder = Path(folder)
    if replot:
        plot_folder(folder, bundled_figures(), redraw)  # the figures, too, come from the CSVs alone
    find_dirs = sorted(p.parent for p in folder.glob("*/find-lr.csv"))
    study_dirs = study_folders(folder) or ([] if find_dirs else [folder])
    studies = [s for s in map(StudyFolder.read, study_dirs) if s is not None]
    claims = [s.claims() for s in studies]
    sections, overview = [], []
    for study, table in zip(studies, claims):
        blocks_of, rows = answer_blocks(study, table)
        sections += blocks_of
        overview += rows
    skipped = read_skipped(folder)
    overview += [{"study": name, "what ran": "nothing: skipped, its data is missing (see Skipped studies)"}
                 for name in skipped["study"]]
    answers: list = [("h2", "The answers")]
    if overview:
        answers += [("p", "Which config is best, and does the framework change it? One line per study (and protocol); "
                          "each study's section below gives the evidence."), ("table", pd.DataFrame(overview).fillna("-"))]
    answers += [("p", rules_text()), *sections]
    details: list = skipped_blocks(skipped)
    for study, table in zip(studies, claims):
        details += detail_blocks(study, table, folder)
    for find_dir in find_dirs:
        details += find_lr_blocks(find_dir, folder)
    body = answers + details
    blocks = [("h1", "lrbench report"),
              ("p", "Generated by `bench report` from the results CSVs and manifests in this folder. Contents: "
                    + " · ".join(_contents(body)))] + body
    atomic_write(folder / "report.html", _html(blocks, folder))
    path = folder / "report.md"
    atomic_write(path, _markdown(blocks, folder))
    return path
