"""The report's first page: which config should I use, and does my framework change that? In words.

Per study (and protocol), from the final values of the runs that trained, with evidence.py's paired
rules against the study's margins: the config to use, pooled over frameworks (a seed's value is the
mean of its frameworks), and the best by each other judged metric where it disagrees; each framework
against the reference, its configs as one Holm family; whether every framework has the same winner;
and the configs whose runs fail, counted, never scored.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import pandas as pd

from .evidence import DIFFERS, MIN_SEEDS, SAME, Comparison, Ranking, family, rank, seeds_text
from .ran import and_list

COLUMN = {"val.accuracy": "final_val_accuracy", "val.loss": "final_val_loss",
          "train.accuracy": "final_train_accuracy", "train.loss": "final_train_loss"}
FAILED = ("diverged", "collapsed", "failed")
VERDICTS = ("held", "not held", "cannot tell", "not evaluated")


def lower_is_better(metric: str) -> bool:
    return metric.endswith("loss")


def metric_words(metric: str) -> str:
    return metric.replace(".", " ")


def value(x: float, metric: str) -> str:
    """A final value as a user reads it: an accuracy in percent, a loss as it is."""
    return f"{100 * x:.2f}%" if metric.endswith("accuracy") else f"{x:.4f}"


def amount(value: float, metric: str, signed: bool = True, unit: bool = True) -> str:
    """A difference in its user's units: points of accuracy, a loss as it is."""
    if metric.endswith("accuracy"):
        return f"{100 * value:{'+' if signed else ''}.2f}" + (" points" if unit else "")
    return f"{value:{'+' if signed else ''}.4f}"


def short_names(configs) -> dict[str, str]:
    """Config labels as a reader wants them: without parenthesised details where the name stays distinct
    (`inverse_sqrt`, not `inverse_sqrt(lr=0.1,timing=after_epoch)`), and without the words every config shares."""
    configs = [str(c) for c in configs]
    bare = {c: re.sub(r"\s+", " ", re.sub(r"\([^()]*\)", "", c)).strip() for c in configs}
    taken = pd.Series(list(bare.values())).value_counts()
    short = {c: b if b and taken[b] == 1 else c for c, b in bare.items()}
    common = set.intersection(*(set(n.split()) for n in short.values())) if len(short) > 1 else set()
    dropped = {c: " ".join(w for w in n.split() if w not in common) for c, n in short.items()}
    if all(dropped.values()) and len(set(dropped.values())) == len(dropped):
        short = dropped
    return short


def finals(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The final ``metric`` of the runs that trained: a row per (framework, seed), a column per config."""
    ok = runs[~runs["status"].isin(FAILED)].assign(config=lambda d: d["config"].astype(str))
    return ok.pivot_table(index=["framework", "seed"], columns="config", values=COLUMN[metric], aggfunc="mean")


def failures(runs: pd.DataFrame, metric: str) -> dict[str, dict[str, tuple[int, int]]]:
    """The configs with runs that diverged, collapsed or failed (or end with no value): per framework, (failed, runs)."""
    failed = runs["status"].isin(FAILED) | runs[COLUMN[metric]].isna()
    out: dict = {}
    for (config, framework), bad in failed.groupby([runs["config"].astype(str), runs["framework"]], sort=False):
        out.setdefault(config, {})[framework] = (int(bad.sum()), len(bad))
    return {c: by for c, by in out.items() if any(n for n, _ in by.values())}


def failure_text(by: dict[str, tuple[int, int]]) -> str:
    failed, total = sum(n for n, _ in by.values()), sum(t for _, t in by.values())
    return (f"trains in {total - failed} of {total} runs ("
            + ", ".join(f"{fw} {t - n} of {t}" for fw, (n, t) in by.items()) + ")")


def _ranking(wide: pd.DataFrame, metric: str, margin: float) -> Ranking | None:
    """Configs ranked over seeds (a seed's value: the mean of its frameworks), wins counted per framework x seed."""
    wide = wide.dropna()
    if wide.empty:
        return None
    per_seed = wide.groupby(level="seed").mean()
    ranking = rank({c: per_seed[c] for c in per_seed}, lower_is_better(metric), margin)
    sign = -1 if lower_is_better(metric) else 1
    ranking.wins = {c: (int((sign * wide[ranking.best] > sign * wide[c]).sum()), len(wide))
                    for c in wide if c != ranking.best}
    return ranking


@dataclass
class FrameworkAnswer:
    """Does ``framework`` change this study's answer against the reference, config by config (one Holm family)?"""

    framework: str
    comparisons: dict[str, Comparison]

    @property
    def verdict(self) -> str:
        verdicts = {c.verdict for c in self.comparisons.values()}
        if not verdicts:
            return "not compared"
        if verdicts == {SAME}:
            return "changes nothing"
        return "changes the result" if DIFFERS in verdicts else "cannot tell"

    @property
    def differs(self) -> list[str]:
        return [k for k, c in self.comparisons.items() if c.verdict == DIFFERS]



@dataclass
class StudyAnswer:
    """The two answers for one study (and protocol), with the evidence each sentence rests on."""

    primary: str
    margins: dict[str, float]
    reference: str
    frameworks: list[str]
    names: dict[str, str]
    failing: dict[str, dict]
    pooled: dict[str, Ranking] = field(default_factory=dict)  # per judged metric
    by_framework: dict[str, Ranking] = field(default_factory=dict)  # the primary's
    effects: dict[str, dict[str, FrameworkAnswer]] = field(default_factory=dict)  # metric -> framework -> answer

    @property
    def ranking(self) -> Ranking | None:
        return self.pooled.get(self.primary)

    @property
    def seeds(self) -> int:
        return self.ranking.seeds if self.ranking else 0

    def name(self, config: str) -> str:
        return self.names.get(config, config)

    # ------------------------------------------------------------ which config

    def use(self) -> str:
        """Which config to use, in a sentence or two, with how sure."""
        r, m, primary = self.ranking, self.margins[self.primary], self.primary
        if r is None:
            return "No config trained in every run: nothing to recommend."
        best = f"{'lowest' if r.lower_is_better else 'highest'} {metric_words(primary)}, {value(r.means[r.best], primary)}"
        if not r.decided:
            return (f"Best mean: **{self.name(r.best)}** ({best}); {seeds_text(r.seeds)}: too few to recommend it, "
                    f"{MIN_SEEDS} decide.")
        text = f"Use **{self.name(r.best)}** ({best})"
        if r.rivals and not r.ties and not r.behind:
            won = min(w for w, _ in r.wins.values())
            text += (f": better than every other config by more than ±{amount(m, primary, False)}, ahead in at least "
                     f"{won} of {max(n for _, n in r.wins.values())} framework × seed pairs")
        if r.ties:
            text += f"; tied with {self._list(r.ties)} within ±{amount(m, primary, False)}"
        if r.behind:
            text += f"; {self._list(r.behind)} worse, not shown beyond ±{amount(m, primary, False)}"
        return text + "." + self._other_metrics()

    def _other_metrics(self) -> str:
        """Where another judged metric names another best config, say so, with the paired difference."""
        winner, out = self.ranking.best, ""
        for metric, r in self.pooled.items():
            if metric == self.primary or r.best == winner or winner not in r.rivals:
                continue
            c, (won, pairs) = r.rivals[winner], r.wins[winner]
            sign = -1 if r.lower_is_better else 1  # the rival's difference was taken in the better direction
            low, high = sorted((sign * c.low, sign * c.high))
            out += (f" By {metric_words(metric)}, {self.name(r.best)} is best: {amount(sign * c.mean, metric)} "
                    f"[95% {amount(low, metric)}, {amount(high, metric)}] against it, {won} of {pairs} pairs, "
                    f"{self._beyond(c, metric)}.")
        return out

    def _beyond(self, c: Comparison, metric: str) -> str:
        m = amount(self.margins[metric], metric, False)
        return {DIFFERS: f"beyond ±{m}", SAME: f"the same within ±{m}"}.get(c.verdict, f"{c.verdict} against ±{m}")

    def _list(self, configs: list[str]) -> str:
        return and_list([self.name(c) for c in configs])

    def how_sure(self) -> str:
        r = self.ranking
        if r is None or not r.decided:
            return f"undecided ({seeds_text(self.seeds)})"
        if not r.rivals:
            return "one config"
        if r.ties:
            return f"tied with {len(r.ties)}"
        return f"ahead of all; {len(r.behind)} not beyond the margin" if r.behind else "beats all beyond the margin"

    # ------------------------------------------------------------ does the framework change it

    def same_winner(self) -> tuple[str, str]:
        """("yes" | "no" | "cannot tell", why): is the config to use the best, or *same* as the best, everywhere?"""
        r = self.ranking
        if r is None or len(self.by_framework) < 2:
            return "cannot tell", "one framework ran"
        if not r.decided:
            return "cannot tell", f"{seeds_text(r.seeds)}: nothing is decided below {MIN_SEEDS}"
        no, unsure = [], []
        for fw, mine in self.by_framework.items():
            if mine.best == r.best:
                continue
            c = mine.rivals.get(r.best)
            if c is None or not mine.decided:
                unsure.append(f"{fw} cannot rank it")
            elif c.verdict == DIFFERS:
                no.append(f"{fw}: {self.name(mine.best)}")
            elif c.verdict != SAME:
                unsure.append(f"{fw}'s best is {self.name(mine.best)}, and {self.name(r.best)} there is {c.verdict}")
        if no:
            return "no", "; ".join(no)
        if unsure:
            return "cannot tell", "; ".join(unsure)
        return "yes", f"{self.name(r.best)} is the best or the same as the best in every framework"

    def framework(self) -> str:
        """Whether the framework changes the answer: the winner first, then the shifts config by config, the largest
        beside the seed spread."""
        answers = self.effects.get(self.primary, {})
        metric, m = self.primary, amount(self.margins[self.primary], self.primary, False)
        if not answers:
            return "One framework ran: nothing to compare it with."
        if self.seeds < MIN_SEEDS:
            return f"**Cannot tell** with {seeds_text(self.seeds)}: frameworks are compared from {MIN_SEEDS}."
        word, why = self.same_winner()
        shifts = [(fw, k, c) for fw, a in answers.items() for k, c in a.comparisons.items()]
        fw, k, largest = max(shifts, key=lambda s: abs(s[2].mean))
        spread = pd.Series([c.spread for *_, c in shifts]).median()
        evidence = (f"Largest: {fw} − {self.reference} {amount(largest.mean, metric)} at {self.name(k)}; seed sd "
                    f"{amount(spread, metric, False)}.")
        if all(a.verdict == "changes nothing" for a in answers.values()):
            return f"**The framework changes nothing here**: every shift is the same within ±{m}. {evidence}"
        winner = {"yes": "**It does not change which config to use**",
                  "no": f"**It changes which config to use** ({why})",
                  "cannot tell": f"**Cannot tell** whether it changes which config to use ({why})"}[word]
        text = f"{winner}. Shifts config by config: {self.shifts_text()} within ±{m}"
        for a in answers.values():
            if a.differs:
                text += f"; {a.framework} differs at " + ", ".join(
                    f"{self.name(k)} ({amount(a.comparisons[k].mean, metric)})" for k in a.differs)
        return f"{text}. {evidence}"

    def shifts_text(self) -> str:
        """The framework shifts counted by verdict: "6 of 12 same, 6 undecided"."""
        answers = self.effects.get(self.primary, {})
        if not answers:
            return "one framework"
        if self.seeds < MIN_SEEDS:
            return f"undecided ({seeds_text(self.seeds)})"
        said = pd.Series([c.verdict for a in answers.values() for c in a.comparisons.values()])
        counts = said.value_counts()
        same, differs = counts.get(SAME, 0), counts.get(DIFFERS, 0)
        rest = len(said) - same - differs
        return f"{same} of {len(said)} same" + (f", {differs} differ" if differs else "") + (
            f", {rest} undecided" if rest else "")

    def per_framework(self) -> str:
        """Each framework's own answer against the reference, its configs one Holm family: "jax changes nothing;
        keras: 1 of 4 undecided"."""
        answers = self.effects.get(self.primary, {})
        if not answers or self.seeds < MIN_SEEDS:
            return self.shifts_text()
        parts = []
        for fw, fa in answers.items():
            if fa.verdict == "changes nothing":
                parts.append(f"{fw} changes nothing")
            elif fa.differs:
                parts.append(f"{fw} differs at {', '.join(self.name(k) for k in fa.differs)}")
            else:
                open_ = sum(not c.decided for c in fa.comparisons.values())
                parts.append(f"{fw}: {open_} of {len(fa.comparisons)} undecided")
        return "; ".join(parts)

    def needed(self) -> int | None:
        """The seeds that would decide the undecided framework comparisons within reach (None: none is)."""
        needs = [c.needed for a in self.effects.get(self.primary, {}).values() for c in a.comparisons.values()
                 if not c.decided and c.needed]
        return max(needs, default=None)

    def out_of_reach(self) -> list[str]:
        """The undecided framework comparisons that more than MAX_SEEDS seeds would not decide at this spread."""
        return [f"{fw} at {self.name(k)}" for fw, a in self.effects.get(self.primary, {}).items()
                for k, c in a.comparisons.items() if not c.decided and c.needed is None]

    def failing_text(self) -> str:
        return " ".join(f"{self.name(c)} {failure_text(by)}: a failure of its config, not ranked or compared."
                        for c, by in self.failing.items())


def answer(runs: pd.DataFrame, primary: str, margins: dict[str, float], reference: str) -> StudyAnswer:
    """Both answers for one study's (protocol's) runs."""
    runs = runs.assign(**{c: float("nan") for c in COLUMN.values() if c not in runs})  # runs without rows have none
    frameworks = list(dict.fromkeys(runs["framework"]))
    failing = failures(runs, primary)
    result = StudyAnswer(primary, margins, reference, frameworks, short_names(runs["config"].astype(str).unique()),
                         failing)
    for metric, margin in margins.items():
        if runs[COLUMN[metric]].isna().all():
            continue
        wide = finals(runs, metric).drop(columns=list(failing), errors="ignore")
        ranking = _ranking(wide, metric, margin)
        if ranking is not None:
            result.pooled[metric] = ranking
        if metric == primary:
            result.by_framework = {fw: r for fw in frameworks
                                   if (r := _ranking(wide[wide.index.get_level_values("framework") == fw], metric, margin))}
        result.effects[metric] = framework_effects(wide, margin, reference)
    return result


def framework_effects(wide: pd.DataFrame, margin: float, reference: str) -> dict[str, FrameworkAnswer]:
    """Each framework against ``reference``, paired by seed, its configs one Holm family."""
    have = set(wide.index.get_level_values("framework"))
    if reference not in have:
        return {}
    ref = wide.xs(reference, level="framework")
    out = {}
    for fw in (f for f in dict.fromkeys(wide.index.get_level_values("framework")) if f != reference):
        other = wide.xs(fw, level="framework")
        pairs = {c: (other[c], ref[c]) for c in wide.columns if other[c].notna().any() and ref[c].notna().any()}
        out[fw] = FrameworkAnswer(fw, family(pairs, margin))
    return out


def effect_table(a: StudyAnswer, metric: str) -> pd.DataFrame:
    """Per config: each framework's paired difference from the reference with the interval its verdict was judged by,
    the sd of the paired differences, and the verdict, all against the margin printed above the table."""
    answers = a.effects.get(metric, {})
    if not answers:
        return pd.DataFrame()
    rows = []
    configs = list(dict.fromkeys(k for fa in answers.values() for k in fa.comparisons))
    unit = " (points)" if metric.endswith("accuracy") else ""
    for k in configs:
        row = {"config": a.name(k)}
        for fw, fa in answers.items():
            c = fa.comparisons.get(k)
            if c is None:
                row[f"{fw} − {a.reference}{unit}"] = "not run"
                continue
            low, high = c.inner if c.verdict == SAME else (c.low, c.high)  # the interval the verdict was judged by
            ci = "" if math.isnan(low) else (f" [{'90%: ' if c.verdict == SAME else ''}{amount(low, metric, unit=False)}, "
                                             f"{amount(high, metric, unit=False)}]")
            needed = f", ~{c.needed} seeds" if c.verdict not in (SAME, DIFFERS) and c.needed else ""
            row[f"{fw} − {a.reference}{unit}"] = (f"{amount(c.mean, metric, unit=False)}{ci}, sd "
                                                  f"{amount(c.sd, metric, False, unit=False)}: {c.verdict}{needed}")
        rows.append(row)
    for k, by in a.failing.items():
        rows.append({"config": a.name(k), **{f"{fw} − {a.reference}{unit}": failure_text(
            {fw: by[fw], a.reference: by.get(a.reference, (0, 0))}) for fw in answers if fw in by}})
    return pd.DataFrame(rows).fillna("-")


def ranking_table(a: StudyAnswer) -> pd.DataFrame:
    """Per framework and pooled: the best config by the primary, and the configs that cannot be separated from it."""
    rows = []
    for who, r in [("all frameworks", a.ranking), *a.by_framework.items()]:
        if r is None:
            continue
        rows.append({"frameworks": who, "best": a.name(r.best), f"mean final {metric_words(a.primary)}":
                     value(r.means[r.best], a.primary), "seeds": r.seeds,
                     "cannot be separated from it": ", ".join(a.name(c) for c in r.ties) if r.decided and r.ties
                     else r.ties_text() if r.decided else f"cannot separate any ({seeds_text(r.seeds)})"})
    return pd.DataFrame(rows)


def claim_counts(claims: pd.DataFrame) -> list[str]:
    """Per framework (and protocol): how many claims are held, not held, cannot tell, not evaluated."""
    if claims.empty:
        return []
    keys = ["framework"] + (["protocol"] if "protocol" in claims else [])
    lines = []
    for key, g in claims.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        kinds = g["verdict"].map(verdict_kind)
        counts = kinds.value_counts()
        lines.append(f"{' '.join(map(str, key))}: " + ", ".join(f"{counts.get(k, 0)} {k}" for k in VERDICTS
                                                               if counts.get(k, 0) or k != "not evaluated"))
    return lines


def verdict_kind(verdict: str) -> str:
    return next(k for k in VERDICTS if verdict.startswith(k))
