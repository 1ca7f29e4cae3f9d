"""The report's first screen: which config is best, and does the framework change that answer?

Per study (and protocol): the best config per framework by the study's primary metric with its
interval over seeds and the configs it cannot be told apart from; whether the winner is the same in
every framework; per config, the frameworks' mean difference beside the spread between seeds, with a
verdict; the claims counted. Every rule is evidence.py's.
"""

from __future__ import annotations

import math

import pandas as pd

from .evidence import Ranking, interval, paired_verdict, rank, seeds_text

COLUMN = {"val.accuracy": "final_val_accuracy", "val.loss": "final_val_loss",
          "train.accuracy": "final_train_accuracy", "train.loss": "final_train_loss"}
VERDICTS = ("held", "not held", "cannot tell", "not evaluated")


def lower_is_better(primary: str) -> bool:
    return primary.endswith("loss")


def _per_seed(runs: pd.DataFrame, column: str) -> pd.Series:
    return runs.groupby("seed")[column].mean().dropna()


def _num(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.4f}"


def _with_interval(values: pd.Series) -> str:
    mean, low, high = interval(values)
    if math.isnan(mean):
        return "n/a"
    return f"{mean:.4f} ({seeds_text(len(values))})" if math.isnan(low) else f"{mean:.4f} [{low:.4f}, {high:.4f}]"


def rankings(runs: pd.DataFrame, primary: str, margin: float | None) -> dict[str, Ranking]:
    """Per framework: its configs ranked by the final ``primary`` (mean over seeds), ties by evidence.rank."""
    column = COLUMN[primary]
    out = {}
    for framework, g in runs.groupby("framework", sort=False):
        values = {str(c): _per_seed(r, column) for c, r in g.groupby("config", observed=True, sort=True)}
        values = {c: v for c, v in values.items() if len(v)}
        if values:
            out[framework] = rank(values, lower_is_better(primary), margin)
    return out


def best_table(runs: pd.DataFrame, ranked: dict[str, Ranking], primary: str) -> pd.DataFrame:
    column = COLUMN[primary]
    return pd.DataFrame([{
        "framework": fw, "best": r.best,
        f"final {primary} (mean [95% CI])": _with_interval(_per_seed(runs[(runs["framework"] == fw)
                                                                           & (runs["config"].astype(str) == r.best)], column)),
        "cannot be separated from it": r.ties_text(),
    } for fw, r in ranked.items()])


def winner_line(ranked: dict[str, Ranking]) -> str:
    """Whether the best config is the same in every framework, beyond the seeds' evidence: a line whose bold
    word is the verdict (yes, no, cannot tell)."""
    if len(ranked) < 2:
        return "Same winner in every framework: cannot tell (one framework ran)."
    bests = {fw: r.best for fw, r in ranked.items()}
    named = ", ".join(f"{fw} {b}" for fw, b in bests.items())
    undecided = [fw for fw, r in ranked.items() if r.ties is None]
    if len(set(bests.values())) == 1:
        if undecided:
            return (f"Same winner in every framework: **cannot tell**: {next(iter(bests.values()))} has the best mean in "
                    f"every framework, but {seeds_text(ranked[undecided[0]].seeds)} and no margin separate no config.")
        return f"Same winner in every framework: **yes**, {next(iter(bests.values()))}."
    if undecided:
        return f"Same winner in every framework: **cannot tell** ({named}; {', '.join(undecided)} cannot separate its configs)."
    tied = all(b in ranked[fw].ties or b == ranked[fw].best for b in bests.values() for fw in ranked)
    if tied:
        return f"Same winner in every framework: **cannot tell** ({named}, each tied with the others' within the seeds)."
    return f"Same winner in every framework: **no** ({named}, not tied)."


def framework_effect(runs: pd.DataFrame, primary: str, margin: float | None, reference: str) -> pd.DataFrame:
    """Per config: the reference's mean, each framework's paired difference against it beside the seed
    spread, and one verdict: differ if any pair differs, agree if all agree, else cannot tell."""
    column = COLUMN[primary]
    frameworks = [fw for fw in dict.fromkeys(runs["framework"]) if fw != reference]
    if reference not in set(runs["framework"]) or not frameworks:
        return pd.DataFrame()
    rows, by_framework = [], {fw: [] for fw in frameworks}
    for config, g in runs.groupby("config", observed=True, sort=True):
        ref = _per_seed(g[g["framework"] == reference], column)
        row = {"config": str(config), f"{reference} final {primary}": _with_interval(ref)}
        verdicts = []
        for fw in frameworks:
            other = _per_seed(g[g["framework"] == fw], column)
            if not len(other) or not len(ref):
                row[f"{fw} − {reference}"] = "not run"
                continue
            v = paired_verdict(other, ref, margin)
            ci = "" if math.isnan(v.low) else f" [{v.low:+.4f}, {v.high:+.4f}]"
            row[f"{fw} − {reference}"] = f"{v.mean:+.4f}{ci}, seed sd {_num(v.spread)}: {v.verdict}"
            verdicts.append(v.verdict)
            by_framework[fw].append(v.verdict)
        row["verdict"] = ("differ" if "differ" in verdicts else "agree" if verdicts and set(verdicts) == {"agree"}
                          else next((v for v in verdicts if v.startswith("cannot tell (")), "cannot tell"))
        rows.append(row)
    effect = pd.DataFrame(rows)
    effect.attrs.update(reference=reference, by_framework=by_framework)  # each framework's own, for the overview
    return effect


def effect_counts(effect: pd.DataFrame) -> str:
    """The overview's framework effect: per framework, its configs counted by verdict against the reference.
    Per framework, so that one with fewer seeds (cannot tell) does not hide another's agree or differ."""
    by_framework = {fw: v for fw, v in effect.attrs.get("by_framework", {}).items() if v} if len(effect) else {}
    if not by_framework:
        return "one framework"
    return "; ".join(f"{fw} − {effect.attrs['reference']}: "
                     + ", ".join(f"{n} {v}" for v, n in pd.Series(verdicts).value_counts().items())
                     for fw, verdicts in by_framework.items())


def claim_counts(claims: pd.DataFrame) -> list[str]:
    """Per framework (and protocol): how many claims are held, not held, cannot tell, not evaluated."""
    if claims.empty:
        return []
    keys = ["framework"] + (["protocol"] if "protocol" in claims else [])
    lines = []
    for key, g in claims.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        kinds = g["verdict"].map(lambda v: next(k for k in VERDICTS if v.startswith(k)))
        counts = kinds.value_counts()
        lines.append(f"{' '.join(map(str, key))}: " + ", ".join(f"{counts.get(k, 0)} {k}" for k in VERDICTS
                                                               if counts.get(k, 0) or k != "not evaluated"))
    return lines


def overview_row(title: str, ran_text: str, ranked: dict[str, Ranking], winner: str, effect: pd.DataFrame,
                 claims: pd.DataFrame) -> dict:
    """One line of the report's first table: a study (and protocol) with its two answers and their evidence."""
    bests = list(dict.fromkeys(r.best for r in ranked.values()))
    kinds = claims["verdict"].map(lambda v: next(k for k in VERDICTS if v.startswith(k))) if len(claims) else pd.Series()
    counts = kinds.value_counts()
    return {
        "study": title, "what ran": ran_text,
        "best": bests[0] if len(bests) == 1 else "; ".join(f"{fw}: {r.best}" for fw, r in ranked.items()),
        "same winner": winner.split("**")[1] if "**" in winner else "cannot tell",
        "framework effect (configs)": effect_counts(effect),
        "claims (all frameworks)": ", ".join(f"{counts.get(k, 0)} {k}" for k in VERDICTS if counts.get(k, 0)) or "none",
    }
