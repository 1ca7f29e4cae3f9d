"""The error rates of evidence.py's rules, measured on simulated seeds: a rule nobody measured is no rule.

Each simulated study has ``CONFIGS`` configs, each compared across two frameworks over n seeds. A
seed's final value has the spread ``SEED_SD`` (in margins) in each framework, correlated ``rho``
between the two (they share initial weights and batches), so a paired difference has the sd
``SEED_SD * sqrt(2 (1 - rho))``. Every config has the same true effect. The rates are what the
report's rules (``evidence.tests``, ``holm``, ``verdicts``) say on them; tests/test_calibration.py
asserts the bounds and docs/verdicts.md prints the table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .evidence import DETECTABLE, DIFFERS, INCONCLUSIVE, SAME, holm, tests, verdicts

SEEDS = (3, 5, 10)
RHOS = (0.0, 0.7, 0.9)
EFFECTS = (0.0, 1.0, 2.0)  # in margins
CONFIGS = 4  # a study's family of configs, Holm-corrected together
SEED_SD = 1.0  # in margins: the seeds' spread as large as the margin, as in the committed studies
DRAWS = 20_000


def rates(seeds: int, rho: float, effect: float, draws: int = DRAWS, seed: int = 0) -> dict[str, float]:
    """How often each verdict is given to one config, and how often a study says *differs* for any of its configs."""
    rng = np.random.default_rng(seed)
    sd = SEED_SD * np.sqrt(2 * (1 - rho))
    d = effect + sd * rng.standard_normal((draws, CONFIGS, seeds))
    same, p, excludes_zero = tests(d, margin=1.0)
    said = verdicts(same, holm(p), excludes_zero, seeds)
    share = {v: float(np.mean(said == v)) for v in (SAME, DETECTABLE, INCONCLUSIVE, DIFFERS)}
    return {**share, "differs in the study": float(np.mean((said == DIFFERS).any(axis=-1)))}


def table(draws: int = DRAWS) -> pd.DataFrame:
    rows = [{"seeds": n, "rho": rho, "true effect (margins)": effect, **rates(n, rho, effect, draws)}
            for n in SEEDS for rho in RHOS for effect in EFFECTS]
    return pd.DataFrame(rows)


def markdown(frame: pd.DataFrame) -> str:
    """The table as docs/verdicts.md prints it: shares as percentages."""
    shown = frame.copy()
    for column in (SAME, DETECTABLE, INCONCLUSIVE, DIFFERS, "differs in the study"):
        shown[column] = shown[column].map(lambda x: f"{100 * x:.1f}%")
    shown["rho"] = shown["rho"].map(lambda x: f"{x:g}")
    shown["true effect (margins)"] = shown["true effect (margins)"].map(lambda x: f"{x:g}")
    return shown.to_markdown(index=False)
