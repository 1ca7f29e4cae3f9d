"""When the seeds can tell two configs or two frameworks apart: each decision rule said once.

Every comparison is paired by seed (frameworks and configs share initial weights and batches) and
judged against a practical margin the study declares: the difference too small to matter to a user.
docs/verdicts.md states the rules for users, with their error rates as tests/test_calibration.py
measures them (bench/calibration.py simulates the seeds).

- ``MIN_SEEDS`` = 3. Below it nothing is decided: 2 seeds give one degree of freedom (t = 12.7).
- *same*: the 90% t-interval of the paired difference lies inside plus or minus the margin (two
  one-sided t-tests at 5%, an equivalence test).
- *differs*: the 95% t-interval lies wholly beyond the margin, and stays so after Holm's correction
  over the family it belongs to (a study's configs, or the configs ranked against the best).
- *detectable*: the 95% interval excludes 0 but does not lie beyond the margin: a shift the seeds
  see, not shown to matter.
- *inconclusive* otherwise, with about how many seeds would decide it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

MIN_SEEDS = 3
CONFIDENCE = 0.95  # of the intervals shown, and of *differs*
ALPHA = 0.05  # each one-sided test of *same* (its interval is 90%); the family-wise level of *differs*
MAX_SEEDS = 100  # beyond this many seeds "would decide" is no advice
SAME, DIFFERS, DETECTABLE, INCONCLUSIVE = "same", "differs", "detectable", "inconclusive"


def seeds_text(n: int) -> str:
    return f"{n} seed" + ("" if n == 1 else "s")


def interval(values, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Mean and its t-interval over seeds; the interval is NaN with fewer than 2 values."""
    v = np.asarray(pd.Series(values).dropna(), dtype=float)
    if len(v) == 0:
        return math.nan, math.nan, math.nan
    mean = float(v.mean())
    if len(v) < 2:
        return mean, math.nan, math.nan
    sem = stats.sem(v)
    if sem == 0:
        return mean, mean, mean
    low, high = stats.t.interval(confidence, len(v) - 1, loc=mean, scale=sem)
    return mean, float(low), float(high)


def spread(*groups) -> float:
    """The standard deviation between seeds, pooled over ``groups`` (each a set of per-seed values); NaN
    when no group has 2 values."""
    variances = [np.var(np.asarray(g, dtype=float), ddof=1) for g in (pd.Series(g).dropna() for g in groups) if len(g) >= 2]
    return float(np.sqrt(np.mean(variances))) if variances else math.nan


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values over the last axis: family-wise error at most the level, for any
    dependence between the family's tests."""
    p = np.asarray(p, dtype=float)
    k = p.shape[-1]
    order = np.argsort(p, axis=-1)
    ranked = np.take_along_axis(p, order, axis=-1) * (k - np.arange(k))
    ranked = np.minimum(1.0, np.maximum.accumulate(ranked, axis=-1))
    out = np.empty_like(ranked)
    np.put_along_axis(out, order, ranked, axis=-1)
    return out


def tests(d: np.ndarray, margin: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rules' tests on paired differences ``d`` (seeds on the last axis, any leading axes):
    *same* (90% t-interval inside the margin), the two-sided p of "beyond the margin on the side of the
    mean" (below 0.05 exactly when the 95% interval lies wholly beyond it), and "the 95% interval excludes 0"."""
    d = np.asarray(d, dtype=float)
    n = d.shape[-1]
    if n < 2:
        shape = d.shape[:-1]
        return np.zeros(shape, bool), np.ones(shape), np.zeros(shape, bool)
    mean, se = d.mean(axis=-1), d.std(axis=-1, ddof=1) / np.sqrt(n)
    half90 = stats.t.ppf(1 - ALPHA, n - 1) * se
    half95 = stats.t.ppf(1 - (1 - CONFIDENCE) / 2, n - 1) * se
    same = (mean - half90 > -margin) & (mean + half90 < margin)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.nan_to_num(2 * stats.t.sf((np.abs(mean) - margin) / se, n - 1), nan=1.0)
    return same, np.minimum(1.0, p), np.abs(mean) > half95


def verdicts(same, p_adjusted, excludes_zero, seeds: int) -> np.ndarray:
    """The verdict words from the tests, *differs* judged on Holm-adjusted p-values."""
    if seeds < MIN_SEEDS:
        return np.full(np.shape(same), INCONCLUSIVE, dtype=object)
    return np.where(same, SAME, np.where(p_adjusted < 1 - CONFIDENCE, DIFFERS,
                                         np.where(excludes_zero, DETECTABLE, INCONCLUSIVE))).astype(object)


@dataclass
class Comparison:
    """A paired difference ``a - b`` over seeds, judged against ``margin``."""

    mean: float
    low: float  # 95%
    high: float
    sd: float  # of the paired differences
    seeds: int
    margin: float
    p_differs: float  # two-sided p of "|difference| > margin"; Holm-adjusted within its family
    verdict: str = ""
    needed: int | None = None  # about how many seeds would decide an inconclusive or detectable one
    spread: float = math.nan  # between seeds within a side, pooled (what the seeds' noise is, for the reader)
    inner: tuple[float, float] = (math.nan, math.nan)  # the 90% interval, which *same* is judged by

    @property
    def decided(self) -> bool:
        return self.verdict in (SAME, DIFFERS)


def seeds_needed(mean: float, sd: float, margin: float, seeds: int) -> int | None:
    """About how many seeds would decide, if the mean and the sd of the differences stayed as observed:
    *same* when the mean is inside the margin, *differs* when beyond. None: more than MAX_SEEDS."""
    gap = abs(abs(mean) - margin)
    if gap == 0 or math.isnan(gap) or math.isnan(sd):
        return None
    if sd == 0:
        return max(seeds + 1, MIN_SEEDS)
    level = 1 - ALPHA if abs(mean) < margin else 1 - (1 - CONFIDENCE) / 2
    for n in range(max(seeds + 1, MIN_SEEDS), MAX_SEEDS + 1):
        if stats.t.ppf(level, n - 1) * sd / math.sqrt(n) < gap:
            return n
    return None


def compare(a: pd.Series, b: pd.Series, margin: float) -> Comparison:
    """``a - b`` paired by seed (both indexed by seed); its verdict, before any family correction."""
    return family({"": (a, b)}, margin)[""]


def family(pairs: dict[str, tuple[pd.Series, pd.Series]], margin: float) -> dict[str, Comparison]:
    """Each ``a - b`` paired by seed, judged against ``margin``; *differs* is Holm-corrected over the family."""
    diffs, sides = {}, {}
    for key, (a, b) in pairs.items():
        both = pd.concat({"a": a, "b": b}, axis=1).dropna()
        diffs[key] = (both["a"] - both["b"]).to_numpy(dtype=float)
        sides[key] = spread(both["a"], both["b"])
    tested = {key: tests(d, margin) for key, d in diffs.items()}
    adjusted = holm([float(t[1]) for t in tested.values()]) if tested else []
    out = {}
    for (key, d), (same, _, excludes_zero), p in zip(diffs.items(), tested.values(), adjusted):
        mean, low, high = interval(d)
        sd = float(np.std(d, ddof=1)) if len(d) > 1 else math.nan
        c = Comparison(mean, low, high, sd, len(d), margin, float(p), spread=sides[key],
                       inner=interval(d, 1 - 2 * ALPHA)[1:])
        c.verdict = str(verdicts(same, p, excludes_zero, len(d)))
        if not c.decided:
            c.needed = seeds_needed(c.mean, c.sd, margin, c.seeds)
        out[key] = c
    return out


@dataclass
class Ranking:
    """Configs ranked by their mean over seeds; ``rivals``: the others, each paired against the best
    (positive mean: the best is better), Holm-corrected as one family."""

    best: str
    means: dict
    seeds: int
    lower_is_better: bool
    rivals: dict[str, Comparison] = field(default_factory=dict)
    wins: dict[str, tuple[int, int]] = field(default_factory=dict)  # config -> (seeds the best wins, seeds paired)

    @property
    def decided(self) -> bool:
        return self.seeds >= MIN_SEEDS

    @property
    def ties(self) -> list[str]:
        """The configs the seeds cannot separate from the best: the same within the margin, or inconclusive."""
        return [c for c, r in self.rivals.items() if r.verdict in (SAME, INCONCLUSIVE)]

    @property
    def behind(self) -> list[str]:
        """The configs the seeds see worse than the best, not shown worse beyond the margin (*detectable*)."""
        return [c for c, r in self.rivals.items() if r.verdict == DETECTABLE]

    def ties_text(self) -> str:
        if not self.decided:
            return f"cannot separate any ({seeds_text(self.seeds)})"
        return ", ".join(self.ties) if self.ties else "none"


def rank(values: dict[str, pd.Series], lower_is_better: bool, margin: float) -> Ranking:
    """The best config by its mean over seeds, and each other config paired against it by seed."""
    values = {c: pd.Series(v).dropna() for c, v in values.items() if len(pd.Series(v).dropna())}
    means = {c: float(v.mean()) for c, v in values.items()}
    best = (min if lower_is_better else max)(means, key=means.get)
    seeds = min(len(v) for v in values.values())
    sign = -1 if lower_is_better else 1
    pairs = {c: (sign * values[best], sign * v) for c, v in values.items() if c != best}
    rivals = family(pairs, margin)
    wins = {}
    for c, (a, b) in pairs.items():
        both = pd.concat({"a": a, "b": b}, axis=1).dropna()
        wins[c] = (int((both["a"] > both["b"]).sum()), len(both))
    return Ranking(best, means, seeds, lower_is_better, rivals, wins)
