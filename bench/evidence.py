"""When the seeds can tell two numbers apart: intervals, seed spread and verdicts, each rule said once.

docs/verdicts.md states these rules for users; the report prints them once.

- ``MIN_SEEDS`` = 3. Below it a framework comparison is *cannot tell (n seeds)*, never *differ*:
  with 2 seeds the spread between seeds is one difference, and a 95% t-interval is 12.7 of its
  standard errors wide; 3 seeds is the fewest at which the spread is estimated at all (2 degrees of
  freedom, t = 4.30) and an interval can exclude zero without the difference being enormous.
- Intervals: the 95% t-interval of a mean over seeds (``scipy.stats.t``), valid at small n for
  roughly normal seed noise; framework differences are paired by seed (same weights, same batches).
- Seed spread: the standard deviation between seeds within a framework (pooled over the two sides).
- A framework difference is *differ* when its interval excludes zero **and** its mean is beyond the
  threshold: the study's stated ``margin`` when it has one, else the seed spread; *agree* when the
  whole interval lies inside plus or minus the threshold; *cannot tell* otherwise.
- Configs are ranked by their mean; a config is tied with the best when their intervals overlap
  (2 seeds or more) or when it is within the study's margin. With one seed and no margin nothing is
  separated: the ranking says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

MIN_SEEDS = 3
CONFIDENCE = 0.95


def seeds_text(n: int) -> str:
    return f"{n} seed" + ("" if n == 1 else "s")


def interval(values) -> tuple[float, float, float]:
    """Mean and its 95% t-interval over seeds; the interval is NaN with fewer than 2 values."""
    v = np.asarray(pd.Series(values).dropna(), dtype=float)
    if len(v) == 0:
        return math.nan, math.nan, math.nan
    mean = float(v.mean())
    if len(v) < 2:
        return mean, math.nan, math.nan
    sem = stats.sem(v)
    if sem == 0:
        return mean, mean, mean
    low, high = stats.t.interval(CONFIDENCE, len(v) - 1, loc=mean, scale=sem)
    return mean, float(low), float(high)


def spread(*groups) -> float:
    """The standard deviation between seeds, pooled over ``groups`` (each a set of per-seed values); NaN
    when no group has 2 values."""
    variances = [np.var(np.asarray(g, dtype=float), ddof=1) for g in (pd.Series(g).dropna() for g in groups) if len(g) >= 2]
    return float(np.sqrt(np.mean(variances))) if variances else math.nan


@dataclass
class Verdict:
    mean: float
    low: float
    high: float
    spread: float
    seeds: int
    threshold: float
    verdict: str  # "agree", "differ" or "cannot tell (...)"


def paired_verdict(a: pd.Series, b: pd.Series, margin: float | None = None) -> Verdict:
    """``a - b`` paired by seed (both indexed by seed), with its interval, the seed spread and the verdict."""
    both = pd.concat({"a": a, "b": b}, axis=1).dropna()
    d = both["a"] - both["b"]
    n = len(d)
    mean, low, high = interval(d)
    s = spread(both["a"], both["b"])
    threshold = margin if margin else s
    if n < MIN_SEEDS:
        verdict = f"cannot tell ({seeds_text(n)})"
    elif (low > 0 or high < 0) and abs(mean) > threshold:
        verdict = "differ"
    elif -threshold <= low and high <= threshold:
        verdict = "agree"
    else:
        verdict = "cannot tell"
    return Verdict(mean, low, high, s, n, threshold, verdict)


@dataclass
class Ranking:
    best: str
    ties: list[str] | None  # None: nothing can be separated (one seed, no margin)
    means: dict
    intervals: dict
    seeds: int

    def ties_text(self) -> str:
        if self.ties is None:
            return f"cannot separate any ({seeds_text(self.seeds)}, no margin)"
        return ", ".join(self.ties) if self.ties else "none"


def rank(values: dict[str, pd.Series], lower_is_better: bool, margin: float | None = None) -> Ranking:
    """The best config by its mean over seeds, and the configs that cannot be told apart from it."""
    summary = {c: interval(v) for c, v in values.items() if len(pd.Series(v).dropna())}
    means = {c: s[0] for c, s in summary.items()}
    best = (min if lower_is_better else max)(means, key=means.get)
    seeds = min(len(pd.Series(v).dropna()) for c, v in values.items() if c in summary)
    _, low, high = summary[best]
    if seeds < 2 and not margin:
        ties = None
    else:
        ties = [c for c, (m, lo, hi) in summary.items() if c != best and (
            (margin and abs(m - means[best]) <= margin) or (seeds >= 2 and lo <= high and low <= hi))]
    return Ranking(best, ties, means, {c: s[1:] for c, s in summary.items()}, seeds)
