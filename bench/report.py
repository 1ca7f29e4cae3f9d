"""The report a user reads: which config is best, does the framework change that answer, and how sure are we?

Built from the CSVs and manifests alone, so `bench report DIR` regenerates it anywhere. It opens
with the answers (answers.py) per study and protocol, each with its evidence (evidence.py), what
ran (ran.py) and the studies `bench all` skipped; then per study the details: a summary per config
and framework, the framework differences, the original's numbers beside lrbench's, the claims, and
the figures in reading order. Written as report.md and as a self-contained report.html.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from backends import REFERENCE_FRAMEWORK

from .answers import FAILED, StudyAnswer, amount, answer, claim_counts, effect_table, metric_words, ranking_table, verdict_kind
from .claims import FILTERS, evaluate_claims, select
from .configs import config_labels, fold_identical
from .data import CLASSES, files_needed
from .evidence import MAX_SEEDS, MIN_SEEDS, seeds_text
from .outcome import flag_at_chance
from .page import contents, markdown, page_html
from .plots import plot_folder
from .provenance import folder_options, folder_study
from .ran import and_list, banner, cannot_answer, ordered_frameworks, what_ran
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
from .spec import DEFAULT_MARGINS, JUDGED, PRIMARY, PROTOCOL_WORDS, PROTOCOLS, bundled_figures, load_study, study_names
from .verdict_figures import VERDICTS, draw_verdicts

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
    last = wide.groupby("run_id").tail(1).set_index("run_id")  # the last epoch as it is: a diverged run's NaN stays NaN
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
            "runs": str(len(g)) if set(g["status"]) == {"done"} else ", ".join(  # all done: the count says it
                f"{n} {s}" for s, n in g["status"].value_counts().items()),
            "final val acc (%)": _mean_std(100 * g["final_val_accuracy"], 2),
            "best val acc (%)": _mean_std(100 * g["best_val_accuracy"], 2),
            "best epoch": _mean_std(g["best_epoch"], 1),
        }
        if target is not None:
            reached = g["epochs_to_target"].dropna()
            row[f"epochs to {target:g}"] = f"{reached.mean():.1f} ({len(reached)}/{len(g)})" if len(reached) else "never"
        row.update({
            "final train loss": _mean_std(g["final_train_loss"]),
            "final val loss": _mean_std(g["final_val_loss"]),
            "epoch s (median)": _median(g["median_epoch_seconds"]),
            "first epoch s": _median(g["first_epoch_seconds"]),
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
        manifest = flag_at_chance(manifest, df, CLASSES)  # runs recorded before the rule are judged by it too
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
        found = dict.fromkeys(self.runs["protocol"].astype(object).fillna("fresh"))
        return sorted(found, key=lambda p: (PROTOCOLS.index(p) if p in PROTOCOLS else len(PROTOCOLS), p))  # fresh first

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


@dataclass
class Headline:
    """One study (and protocol) as the first page tells it: what ran, the answers, and what the runs cannot answer."""

    folder: StudyFolder
    protocol: str
    ran: object
    warning: str | None
    answer: StudyAnswer | None
    claims: pd.DataFrame

    @property
    def title(self) -> str:
        return self.folder.title(self.protocol)

    @property
    def full(self) -> bool:
        return not self.ran.quick

    def command(self, seeds: int, out: str) -> str:
        """The command that adds seeds to this folder's runs, in every framework it holds (without --frameworks,
        `bench run` runs torch, keras and paddle only); finished runs are kept."""
        name = self.folder.spec.argument if self.folder.spec else self.folder.dir.name
        options = re.sub(r"--(seeds|frameworks) \S+\s*", "", self.folder.options).strip()
        return (f"`bench run {name} {options + ' ' if options else ''}--frameworks {','.join(self.ran.frameworks)} "
                f"--seeds {seeds} --out {out}`")

    def ran_text(self) -> str:
        """What ran, in a few words: "10 of the study's 100 epochs, 3 seeds × 4 frameworks"."""
        ran = self.ran
        written = self.folder.spec.runs(["-"])[0].epochs if self.folder.spec else None
        epochs = _join_numbers(ran.epochs) + (f" of the study's {written}" if written and ran.epochs != [written] else "")
        return f"{epochs} epochs, {ran.seeds_words()}"

    def words(self, out: str) -> dict:
        """The first page's row: the study and what ran, which config to use, whether the framework changes it."""
        a = self.answer
        study = f"**{self.title}**: {self.ran_text()}"
        if a is None:
            return {"study": study, "which config to use": "No run finished.", "does the framework change it": "-"}
        use = a.use() + (f" {a.failing_text()}" if a.failing else "") + range_test_note(self)
        framework = a.framework()
        needed = a.needed() if a.seeds >= MIN_SEEDS else MIN_SEEDS
        if needed:
            framework += f" To decide: {self.command(needed, out)}."
        far = a.out_of_reach() if a.seeds >= MIN_SEEDS else []
        if far:
            framework += f" {and_list(far)}: more than {MAX_SEEDS} seeds at this spread."
        return {"study": study, "which config to use": use, "does the framework change it": framework}

    def figure(self, root: Path) -> Path | None:
        """The study's verdict figure, drawn into its folder's figures/; its path from ``root``."""
        if self.answer is None:
            return None
        name = (self.folder.spec.name if self.folder.spec else self.folder.dir.name) + (
            "" if self.protocol == "fresh" else f"_{self.protocol}")
        runs = self.folder.part(self.protocol)[0]
        path = draw_verdicts(self.answer, runs, name, f"{self.title}: final {metric_words(self.answer.primary)}",
                             self.folder.dir / "figures")
        return path.relative_to(root) if path else None

    def row(self) -> dict:
        a = self.answer
        margins = ", ".join(f"{metric_words(m)} ±{amount(v, m, False)}" for m, v in a.margins.items()) if a else "-"
        use = a.name(a.ranking.best) if a and a.ranking else "-"
        return {"study": self.title, "what ran": self.ran_text(),
                "use": use, "how sure": a.how_sure() if a else "-",
                "same winner in every framework": a.same_winner()[0] if a else "-",
                f"each framework against {REFERENCE}": a.per_framework() if a else "-", "margins": margins}


def _join_numbers(values: list) -> str:
    return "/".join(map(str, values)) or "?"


def headlines(folder: StudyFolder, claims: pd.DataFrame) -> list[Headline]:
    spec = folder.spec
    primary = spec.primary if spec else PRIMARY[0]
    margins = spec.margins if spec else {m: DEFAULT_MARGINS[m] for m in dict.fromkeys((primary, *JUDGED))}
    out = []
    for protocol in folder.protocols:
        runs, manifest = folder.part(protocol)
        these = claims[claims["protocol"] == protocol] if "protocol" in claims else claims
        ran = what_ran(manifest, folder.quick)
        found = answer(runs, primary, margins, REFERENCE) if len(runs) else None
        out.append(Headline(folder, protocol, ran, banner(ran, spec), found, these))
    return out


def range_test_note(h: Headline) -> str:
    """Where a failing config's lr is a suggestion of the study's `bench find-lr` folder beside it: which, and
    whether that test found a clear minimum (without one, its suggestions are not a recommendation)."""
    name = h.folder.spec.name if h.folder.spec else h.folder.dir.name
    path = h.folder.dir.parent / f"{name}-find-lr" / "find-lr.csv"
    if not (h.answer and h.answer.failing and path.exists()):
        return ""
    from .find_lr import compare

    df = read_combined(path, LEGACY_COLUMNS, len(LEGACY_COLUMNS), f"run `bench find-lr {name}` again")
    test = compare(df, REFERENCE if REFERENCE in set(df["framework"]) else df["framework"].iloc[0]).iloc[0]
    notes = []
    for config in h.answer.failing:
        lr = re.search(r"lr=([0-9.e+-]+)$", config)
        for rule in ("steepest lr", "minimum lr / 10"):
            if lr and abs(float(lr.group(1)) / test[rule] - 1) < 0.01:
                clear = test["clear minimum"] == "yes"
                notes.append(f" {h.answer.name(config)} is the {rule.removesuffix(' lr')} suggestion ({test[rule]:.4g}) of "
                             f"the range test in {path.parent.name}/, which " + ("found a clear minimum." if clear else
                             "found no clear minimum: its suggestions are not a recommendation."))
    return "".join(notes)


def answer_blocks(h: Headline) -> list[tuple[str, object]]:
    """The evidence behind one headline: what ran, the rankings, every framework comparison with its margin."""
    folder, a, spec = h.folder, h.answer, h.folder.spec
    blocks: list = [("h3", h.title), ("p", h.ran.text())]
    if h.warning:
        blocks.append(("p", h.warning))
    blocks += [("p", line) for line in cannot_answer(h.ran, spec.argument if spec else folder.dir.name, folder.options)]
    runs = folder.part(h.protocol)[0]
    for group in (g for g in folder.identical if " = ".join(g) in set(runs["config"].astype(str))):
        blocks.append(("p", f"{' = '.join(group)}: the same run here (the same optimizer and the same applied lr at "
                            f"every epoch and logged step, train losses equal): ranked and drawn once."))
    if h.ran.quick:  # a smoke test: its numbers are in the tables below, its verdicts would mean nothing
        blocks.append(("p", "A smoke test: no config is ranked and no framework compared; its claims are not "
                            "evaluated at quick size, unless a claim says quick = true."))
        return blocks + ([("list", claim_counts(h.claims))] if len(h.claims) else [])
    if a is None or a.ranking is None:
        return blocks + [("p", "No config trained in every run: nothing to rank.")]
    primary = a.primary
    blocks += [("p", f"Best config by final {metric_words(primary)}; separated from it: worse by more than "
                     f"±{amount(a.margins[primary], primary, False)}, paired by seed:"),
               ("table", ranking_table(a))]
    word, why = a.same_winner()
    blocks.append(("p", f"Same winner in every framework: **{word}** ({why})."))
    for metric in a.margins:
        table = effect_table(a, metric)
        if len(table):
            blocks += [("p", f"Framework against {REFERENCE}, final {metric_words(metric)}: difference [95%; 90% where "
                             f"same], sd of the differences, verdict against ±{amount(a.margins[metric], metric, False)}:"),
                       ("table", table)]
    return blocks  # the claims, one row each, follow in the study's details


def detail_blocks(folder: StudyFolder, claims: pd.DataFrame, root: Path) -> list[tuple[str, object]]:
    """The study's numbers beyond its answers: every run it holds, failed ones too, the original's numbers, the
    claims, the figures."""
    df, runs, spec = folder.df, folder.runs, folder.spec
    blocks = []
    if spec and spec.description:
        blocks.append(("p", "The study as its file defines it: " + spec.description))
    if folder.missing:
        blocks.append(("p", f"**Note**: {folder.missing}."))
    versions = "; ".join(f"{fw} {', '.join(map(str, g['framework_version'].unique()))} on "
                         f"{', '.join(map(str, g['device'].unique()))}" for fw, g in runs.groupby("framework", sort=False))
    blocks += [("h3", "Per config and framework"), ("table", summary_table(runs, spec.target if spec else None)),
               ("p", f"Versions and devices: {versions}.")]
    flagged = runs[runs["status"].isin(["diverged", "collapsed", "failed"])]
    if len(flagged):
        blocks += [("h3", "Runs that did not finish, or collapsed"), ("table", flagged_table(flagged))]
    if df.empty:
        return blocks
    if spec and spec.reference:
        blocks += [("h3", "The original vs lrbench"),
                   ("p", "The original's printed numbers beside lrbench's (mean over seeds), within the study "
                         "file's tolerance or outside it."),
                   ("table", reference_table(spec.reference, folder.rows))]
    evaluated = len(claims) and not claims["verdict"].str.startswith("not evaluated").all()
    if evaluated:  # at quick size only the claims that say quick = true are: the counts above say so
        blocks += [("h3", "Claims"),
                   ("p", f"source: who says it (seed: the original experiment; lrbench: ours). One cell where every "
                         f"framework says the same; the numbers are {REFERENCE}'s."),
                   ("table", claims_table(claims))]
    figures = sorted((p for p in (folder.dir / "figures").glob("*.png") if not p.stem.endswith(VERDICTS)),
                     key=_reading_order)  # the verdict figure is on the first page
    one_each = [p for p in figures if any(p.stem.endswith(f"_curves_{fw}") for fw in set(runs["framework"]))]
    if folder.quick:  # a smoke test's figures show that the pipeline draws: one shown, the rest a click away
        one_each = [p for p in figures if not p.stem.endswith("_curves_by_framework")]
    if figures:
        blocks += [("h3", "Figures")] + [("img", p.relative_to(root)) for p in figures if p not in one_each]
    if one_each:  # the faceted figure shows them side by side; each alone, a click away
        what = "The other figures of this smoke test" if folder.quick else "Each framework's curves alone"
        blocks.append(("p", f"{what}: " + " · ".join(
            f"[{p.stem}]({p.relative_to(root).as_posix()})" for p in one_each) + "."))
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


def _seed(seed) -> str:
    return "all" if pd.isna(seed) else str(int(seed))


def claims_table(claims: pd.DataFrame) -> pd.DataFrame:
    """One row per claim: its verdict per protocol, one cell where every framework says the same, else one per
    framework; the reference framework's numbers beside (its first protocol's)."""
    claims = claims if "protocol" in claims else claims.assign(protocol="")
    short = claims.assign(verdict=claims["verdict"].str.split(":").str[0])
    per_seed = "seed" in short and short["seed"].notna().any()
    keys = ["claim", "source"] + (["seed"] if per_seed else [])
    rows = []
    for key, g in short.groupby(keys, sort=False, dropna=False):
        text, source, *seed = key
        cells = []
        for protocol, p in g.groupby("protocol", sort=False):
            said = dict(zip(p["framework"], p["verdict"]))
            said = {fw: said[fw] for fw in ordered_frameworks(said)}  # the reference first, as every table
            told = (f"{next(iter(said.values()))} (all {len(said)})" if len(set(said.values())) == 1
                    else ", ".join(f"{fw}: {v}" for fw, v in said.items()))
            cells.append(f"{protocol}: {told}" if protocol and g["protocol"].nunique() > 1 else told)
        ref = g[g["framework"] == REFERENCE]
        ref = ref if len(ref) else g
        rows.append({"claim": text, "source": source, **({"seed": _seed(seed[0])} if per_seed else {}),
                     "verdict": "; ".join(cells), "seeds": seeds_range(g),
                     f"numbers ({ref['framework'].iloc[0]})": "; ".join(dict.fromkeys(ref["numbers"].iloc[0].split("; ")))})
    return pd.DataFrame(rows)


def seeds_range(claims: pd.DataFrame) -> str:
    """The seeds a claim's verdicts rest on: "3", or "1-3" where frameworks ran different numbers."""
    if "seeds" not in claims or claims["seeds"].isna().all():
        return "?"
    low, high = int(claims["seeds"].min()), int(claims["seeds"].max())
    return f"{low}" if low == high else f"{low}-{high}"


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


def rules_text() -> str:
    """How the first page's words are decided, said once (evidence.py holds the rules)."""
    return (f"How these are decided: every comparison is paired by seed (frameworks and configs share initial weights "
            f"and batches) against the study's margin, the difference too small to matter to a user. *same*: the 90% "
            f"interval lies inside the margin (an equivalence test); *differs*: the 95% interval lies beyond it (Holm "
            f"over the study's configs); *detectable*: the interval excludes 0, not shown beyond the margin; "
            f"otherwise *inconclusive*, with the seeds that would decide. Below {MIN_SEEDS} seeds nothing is decided. "
            f"Runs that diverge or collapse (one class predicted, or ending at chance) count against their config "
            f"and are never scored. A claim's comparison between configs holds only beyond its margin (its own, else "
            f"the seed spread from {MIN_SEEDS} seeds); a number against the claim's own threshold is judged at any "
            f"seed count, with its seeds shown. docs/verdicts.md "
            f"gives the rules and their measured error rates.")


def read_skipped(folder: Path) -> pd.DataFrame:
    """The studies `bench all` skipped, with the reason and what fixes it (its skipped.csv); none: empty."""
    path = folder / SKIPPED
    if not path.exists():
        return pd.DataFrame(columns=["study", "reason"])
    return read_combined(path, ["study", "reason"], 2, "run `bench all` again")


def _find_lr_rows(folder: Path) -> tuple[str, pd.DataFrame, str]:
    """A `bench find-lr` folder's study, its rows (checked against its manifest) and the framework compared against."""
    from .find_lr import MANIFEST, check_written

    study = folder.name.removesuffix("-find-lr")
    fix = f"run `bench find-lr {study}` again"
    df = read_combined(folder / "find-lr.csv", LEGACY_COLUMNS, len(LEGACY_COLUMNS), fix)
    if (folder / MANIFEST).exists():  # folders from before it have their rows alone
        check_written(df, (folder / MANIFEST).read_text(), folder / "find-lr.csv", fix)
    frameworks = list(dict.fromkeys(df["framework"]))
    return study, df, REFERENCE if REFERENCE in frameworks or not frameworks else frameworks[0]


def find_lr_figure(folder: Path) -> Path | None:
    """The folder's range-test figure, drawn from its CSV alone (None: no rows)."""
    from .plots import plot_find_lr

    study, df, reference = _find_lr_rows(folder)
    return plot_find_lr(df, study, folder / "figures", reference) if len(df) else None


def find_lr_blocks(folder: Path, root: Path) -> list[tuple[str, object]]:
    """The section of one `bench find-lr` folder: the rules, each framework's suggestions side by side, the figure."""
    from .find_lr import CHUNK, FAILED, SMOOTHING, STOP, compare

    study, df, reference = _find_lr_rows(folder)
    fix = f"run `bench find-lr {study}` again"
    failed = read_combined(folder / FAILED, ["framework", "error"], 2, fix) if (folder / FAILED).exists() else None
    did_not_run = [] if failed is None or failed.empty else [
        ("p", "Did not run: " + "; ".join(f"{r.framework} ({r.error})" for r in failed.itertuples()))]
    if df.empty:
        return []
    lrs = df[df["metric"] == "lr"]["value"]
    first = df.iloc[0]
    figure = find_lr_figure(folder)  # from the CSV alone, as every figure
    table = compare(df, reference)
    unclear = [("p", f"**{fw}: {why}**. Its suggestions below are not a recommendation.")
               for fw, why in zip(table["framework"], table["clear minimum"]) if why != "yes"]
    table["clear minimum"] = table["clear minimum"].where(table["clear minimum"] == "yes", "no: see above")
    return [("h2", f"{folder.name}: LR range test, {first['dataset']}, {first['model']}, {first['optimizer']}"),
            ("p", f"The lr grows by a constant factor per step from {lrs.min():.3g} to at most {lrs.max():.3g}, from the "
                  f"same weights and batches in every framework; the loss is smoothed (moving average {SMOOTHING}, "
                  f"bias-corrected) and the test stops once the smoothed loss is above {STOP:g}x its minimum (checked "
                  f"every {CHUNK} steps). Suggestions: steepest = the lr where the smoothed loss falls fastest per decade "
                  f"of lr, before its minimum; minimum / 10 = a tenth of the lr at its lowest. Grid steps count the "
                  f"test's own lrs between a framework's suggestion and {reference}'s."),
            *did_not_run, *unclear, ("table", table), ("img", figure.relative_to(root))]


def front_page(lines: list[Headline], skipped: pd.DataFrame, present: set[str], out: str,
               root: Path) -> list[tuple[str, object]]:
    """The answers in words for every full-size study, one compact table, the originals' conclusions; then the
    smoke tests and the studies not run."""
    full = [h for h in lines if h.full]
    quick = [h for h in lines if not h.full]
    blocks: list = [("h2", "The answers")]
    if full:
        blocks += [("table", pd.DataFrame([h.words(out) for h in full])),
                   ("p", "In short (margins: the differences too small to matter, per study):"),
                   ("table", pd.DataFrame([h.row() for h in full]))]
    else:
        blocks.append(("p", f"No full-size study ran here: the smoke tests below decide nothing. The answers need the "
                            f"studies at full size and 3 seeds or more: `bench all --out {out}` (hours on a CPU; "
                            f"finished runs are kept if it stops)."))
    blocks.append(("p", rules_text()))
    figures = [f for f in (h.figure(root) for h in full) if f is not None]
    if figures:
        blocks += [("h3", "The evidence at a glance"),
                   ("p", f"Per study: each framework's paired difference from {REFERENCE} per config, with its 90% (thick, "
                         f"judging same) and 95% intervals and the margin shaded grey (left); every seed × framework "
                         f"final value per config (right).")]
        blocks += [("img", f) for f in figures]
    originals = original_blocks(full, present)
    if originals:
        blocks += [("h3", "What the originals concluded, tested here"), *originals]
    if quick:
        blocks += [("h3", "Smoke tests (quick runs: they show the pipeline works, and decide nothing)"),
                   ("list", [smoke_line(h) for h in quick])]
    missing = not_run(skipped, present, out)
    if missing:
        blocks += [("h3", "Studies not run here"), ("list", missing)]
    return blocks


def original_blocks(full: list[Headline], present: set[str]) -> list[tuple[str, object]]:
    """Per original experiment, each of its conclusions (claims with source "seed"), told per folder and protocol that
    tested it: held, not held, or cannot tell and why, with the seeds it rests on; where the protocol changes which
    config to use, that first; the original's printed numbers against their tolerance; then the originals not run."""
    studies: dict[str, list[Headline]] = {}
    for h in full:
        studies.setdefault(h.folder.spec.name if h.folder.spec else h.folder.dir.name, []).append(h)
    blocks: list = []
    for name, hs in studies.items():
        lines = [line for line in [protocol_line(hs)] if line]
        parts = [h.claims.assign(part=f"{h.protocol}, {_join_numbers(h.ran.epochs)} epochs")
                 for h in hs if len(h.claims) and "source" in h.claims]
        claims = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["claim", "source"])
        for text, g in claims[claims["source"] == "seed"].groupby("claim", sort=False):
            told = [f"{part}: {_told(p)}" if len(hs) > 1 else _told(p) for part, p in g.groupby("part", sort=False)]
            lines.append(f"{text}: " + "; ".join(told))
        lines += [line for line in map(reference_line, hs) if line]
        if lines:
            blocks += [("p", f"**{name}**:"), ("list", lines)]
    untested = [(name, [c["text"] for c in load_study(name).claims if c.get("source") == "seed"])
                for name in study_names() if name not in present and name not in studies]
    untested = [(name, said) for name, said in untested if said]
    if untested:  # folded: a folder of one study would otherwise list every other original's conclusions
        blocks += [("open", f"The originals not run here ({', '.join(n for n, _ in untested)}): their conclusions, "
                            f"untested (Studies not run here says what each needs)")]
        for name, said in untested:
            blocks += [("p", f"**{name}**, untested here:"), ("list", said)]
        blocks.append(("close", None))
    return blocks


def _told(claims: pd.DataFrame) -> str:
    """One claim's verdicts in one folder and protocol: "**held in all 4** (5 seeds)", or the mix, with why it cannot tell."""
    kinds = claims["verdict"].map(verdict_kind).value_counts()
    per_seed = "seed" in claims and claims["seed"].notna().any()  # one verdict per framework and seed
    unit = ("" if not per_seed else " seeds" if claims["framework"].nunique() == 1 else " framework × seed pairs")
    told = (f"**{kinds.index[0]} in {claims['framework'].iloc[0]}**" if len(claims) == 1
            else f"**{kinds.index[0]} in all {len(claims)}{unit}**" if len(kinds) == 1
            else ", ".join(f"{k} in {n} of {len(claims)}{unit}" for k, n in kinds.items()))
    said = [seeds_text(int(claims["seeds"].min()))] if "seeds" in claims and not per_seed else []
    undecided = claims["verdict"][claims["verdict"].str.startswith("cannot tell: ")]
    if len(undecided):  # why, as the first framework that cannot tell says
        said.append(f"why: {undecided.iloc[0].removeprefix('cannot tell: ').split('; ')[0]}")
    return told + (f" ({'; '.join(said)})" if said else "")


def protocol_line(hs: list[Headline]) -> str:
    """Where a study's protocols name different configs to use: each protocol's answer, in words."""
    answers = {}
    for h in hs:
        if h.answer is not None and h.answer.ranking is not None and h.answer.ranking.decided:
            r, a = h.answer.ranking, h.answer
            use = a.name(r.best) + (f", tied with {a._list([a.name(c) for c in r.ties])}" if r.ties else "")
            answers.setdefault(h.protocol, []).append(f"{use} ({h.ran_text()})")
    if len({a.split(" (")[0].split(",")[0] for uses in answers.values() for a in uses}) < 2:
        return ""
    return "**The protocol changes which config to use**: " + "; ".join(
        f"{PROTOCOL_WORDS.get(p, p)}: {' and '.join(uses)}" for p, uses in answers.items()) + "."


def reference_line(h: Headline) -> str:
    """How many of the original's printed numbers lrbench's runs come within the study file's tolerance of."""
    spec = h.folder.spec
    if not (spec and spec.reference) or h.protocol != "fresh":
        return ""
    table = reference_table(spec.reference, h.folder.rows)
    within = {fw: int(table[fw].astype(str).str.endswith(", within)").sum()) for fw in table.columns[5:]}
    counts = (f"{next(iter(within.values()))} of {len(table)} in " + (f"all {len(within)} frameworks" if len(within) > 1
                                                                        else next(iter(within)))
              if len(set(within.values())) == 1 else ", ".join(f"{fw} {n} of {len(table)}" for fw, n in within.items()))
    return f"the original's printed numbers within the study file's tolerance: **{counts}** (details: The original vs lrbench)"


def smoke_line(h: Headline) -> str:
    runs = h.folder.part(h.protocol)[0]
    bad = runs[runs["status"].isin(FAILED)]
    status = f"all {len(runs)} runs trained" if bad.empty else f"{len(bad)} of {len(runs)} runs " + ", ".join(
        f"{n} {s}" for s, n in bad["status"].value_counts().items())
    return f"{h.title} ({h.ran.short()}): {status}."


def not_run(skipped: pd.DataFrame, present: set[str], out: str) -> list[str]:
    """The bundled studies with no folder here, and the studies `bench all` skipped: what each needs."""
    lines = [f"{r.study}: {r.reason}" for r in skipped.itertuples()]
    for name in study_names():
        if name in present or name in set(skipped["study"]):
            continue
        dataset = load_study(name).dataset
        files = files_needed(dataset)
        needs = f"its data, {', '.join(f'`{f}`' for f in files)}, in the data folder (docs/data.md)" if files else "nothing"
        lines.append(f"{name}: not in this folder; it needs {needs}; `bench run {name} --out {out}`")
    return lines


def write_report(folder: Path, replot: bool = True, redraw: bool = False, say=None) -> Path:
    """report.md and report.html for every study folder (and `bench find-lr` folder) under ``folder``; returns the .md
    path. ``say``: called with each full-size study's answer in one line (the commands print them).

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
    lines = {s.dir: headlines(s, c) for s, c in zip(studies, claims)}
    ordered = [h for full in (True, False) for s in studies for h in lines[s.dir] if h.full == full]
    present = {s.spec.name for s in studies if s.spec} | {s.dir.name for s in studies}
    skipped = read_skipped(folder)
    details: list = [("h2", "Details")]
    for study in sorted(studies, key=lambda s: any(not h.full for h in lines[s.dir])):
        first = (study.df if len(study.df) else study.manifest).iloc[0]
        models = sorted(set(pd.concat([study.df["model"], study.manifest["model"]]).dropna().astype(str)))
        title = f"{study.dir.name}: {first['dataset']}, {', '.join(models)}"
        details += [("open", title), ("h2", title)]
        for h in lines[study.dir]:
            details += answer_blocks(h)
        details += detail_blocks(study, claims[studies.index(study)], folder) + [("close", None)]
    for find_dir in find_dirs:
        details += [("open", f"{find_dir.name}: LR range test"), *find_lr_blocks(find_dir, folder), ("close", None)]
    body = front_page(ordered, skipped, present, _display(folder), folder) + details
    blocks = [("h1", "lrbench report"),
              ("p", "Generated by `bench report` from the results CSVs and manifests in this folder. Contents: "
                    + " · ".join(contents(body)))] + body
    atomic_write(folder / "report.html", page_html(blocks, folder))
    path = folder / "report.md"
    atomic_write(path, markdown(blocks, folder))
    for h in (h for h in ordered if h.full and say):
        r = h.row()
        say(f"{r['study']} ({r['what ran']}): use {r['use']} ({r['how sure']}); the same winner in every framework: "
            f"{r['same winner in every framework']}")
    return path


def _display(folder: Path) -> str:
    """The folder as the user would type it for --out: relative to the working directory when inside it."""
    try:
        return str(folder.resolve().relative_to(Path.cwd().resolve())) or "."
    except ValueError:
        return str(folder)
