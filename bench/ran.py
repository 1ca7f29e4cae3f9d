"""What actually ran in a study folder, read from its manifests, never from the study's description.

The report states it per study (and protocol): epochs, training and validation examples, seeds,
frameworks, quick or full. Where that differs from the study as its file defines it, a banner says
so, and what one framework or one seed cannot answer gets one line with the command that would.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pandas as pd

from backends import DEFAULT_FRAMEWORKS, FRAMEWORKS, REFERENCE_FRAMEWORK

from .data import SIZES
from .evidence import MIN_SEEDS, seeds_text
from .spec import StudySpec


@dataclass
class Ran:
    frameworks: list[str]
    seeds: list[int]
    epochs: list[int]  # planned, as the manifests say
    train: list[int]  # examples
    val: list[int]
    quick: bool
    framework_seeds: dict[str, list[int]] = field(default_factory=dict)  # a framework added later may have fewer
    partial: dict[str, list[int]] = field(default_factory=dict)  # seeds with fewer runs than the folder's fullest seed

    def seeds_words(self, sep: str = " × ") -> str:
        """"5 seeds × 4 frameworks"; where the frameworks ran different seeds, each count with its frameworks:
        "4 frameworks: 10 seeds in torch, keras and paddle, 5 in jax"."""
        n = len(self.frameworks)
        if all(s == self.seeds for s in self.framework_seeds.values()):
            return f"{seeds_text(len(self.seeds))}{sep}{n} framework{'s' if n > 1 else ''}{self._partly()}"
        groups: dict[int, list[str]] = {}
        for fw, seeds in self.framework_seeds.items():
            groups.setdefault(len(seeds), []).append(fw)
        by_count = sorted(groups.items(), reverse=True)
        parts = [f"{seeds_text(k) if i == 0 else k} in {and_list(fws)}" for i, (k, fws) in enumerate(by_count)]
        return f"{n} frameworks: " + ", ".join(parts) + self._partly()

    def _partly(self) -> str:
        """" (paddle's seed 2 partly run)": a seed counted above whose configs have not all run yet."""
        named = [f"{fw}'s seed{'s' if len(s) > 1 else ''} {and_list([str(x) for x in s])}" for fw, s in self.partial.items()]
        return f" ({and_list(named)} partly run)" if named else ""

    def short(self) -> str:
        size = "quick (smoke test)" if self.quick else "full size"
        return f"{_join(self.epochs)} epochs, {_join(self.train)} examples, {self.seeds_words(', ')}, {size}"

    def text(self) -> str:
        size = "quick preset: a smoke test, not a result" if self.quick else "full size"
        return (f"What ran (from the manifests): {_join(self.epochs)} epochs, {_join(self.train)} training and "
                f"{_join(self.val)} validation examples, {seeds_text(len(self.seeds))} "
                f"({', '.join(map(str, self.seeds))}), frameworks {', '.join(self.frameworks)}{self._fewer()}; {size}.")

    def _fewer(self) -> str:
        """The frameworks that ran fewer seeds than the folder holds, with theirs."""
        return "".join(f"; {fw} ran {seeds_text(len(s))} ({', '.join(map(str, s))})"
                       for fw, s in self.framework_seeds.items() if s != self.seeds)


def ordered_frameworks(names) -> list[str]:
    """The reference framework first, then the registry's order: every table and line lists them alike."""
    order = list(FRAMEWORKS)
    return sorted(dict.fromkeys(names), key=lambda f: (f != REFERENCE_FRAMEWORK, order.index(f) if f in order else len(order), f))


def and_list(items: list[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _join(values) -> str:
    return " / ".join(str(v) for v in values) if values else "n/a"


def what_ran(manifest: pd.DataFrame, quick: bool) -> Ran:
    """From the manifests of one study (one protocol): what the runs were, failed ones included."""
    entries = manifest.drop_duplicates("run_id", keep="last")
    specs = [json.loads(s) for s in entries["spec"].dropna()] if "spec" in entries else []

    def examples(key: str, index: int) -> list[int]:
        return sorted({min(s.get(key) or SIZES[s["dataset"]][index], SIZES[s["dataset"]][index]) for s in specs})

    frameworks = ordered_frameworks(entries["framework"].astype(str))
    seeds = {fw: sorted({int(x) for x in entries.loc[entries["framework"].astype(str) == fw, "seed"].dropna()})
             for fw in frameworks}
    runs = entries.groupby([entries["framework"].astype(str), "seed"]).size()  # per seed, against the folder's fullest
    partial = {fw: [int(sd) for sd, k in runs[fw].items() if k < runs.max()]
               for fw in frameworks if fw in runs.index.get_level_values(0)}
    return Ran(frameworks, sorted(set().union(*seeds.values())),
               sorted({int(e) for e in pd.to_numeric(entries["epochs"], errors="coerce").dropna()}),
               examples("train_size", 0), examples("val_size", 1), quick, seeds,
               {fw: s for fw, s in partial.items() if s})


def banner(ran: Ran, study: StudySpec | None) -> str | None:
    """What the runs did not do of the study as its file defines it, or None."""
    if study is None:
        return None
    written = study.runs(["-"])[0]
    full = SIZES[written.dataset]
    as_written = {"epochs": [written.epochs], "training examples": [min(written.train_size or full[0], full[0])],
                  "validation examples": [min(written.val_size or full[1], full[1])]}
    ran_as = {"epochs": ran.epochs, "training examples": ran.train, "validation examples": ran.val}
    gaps = [f"{_join(ran_as[k])} {k} where it says {v[0]}" for k, v in as_written.items() if ran_as[k] and ran_as[k] != v]
    if not gaps and not ran.quick:
        return None
    what = "the quick preset" if ran.quick else "runs other than the study file defines"
    return (f"**These are {what}**: {'; '.join(gaps) or 'the quick preset'}. Every number and verdict below is "
            f"about these runs, not the study as written.")


def cannot_answer(ran: Ran, study_name: str, options: str) -> list[str]:
    """One line per thing these runs cannot answer, with the command that would (``options``: the folder's)."""
    q = f" {options}" if options else ""
    lines = []
    if len(ran.frameworks) < 2:
        lines.append(f"One framework ran ({', '.join(ran.frameworks)}): whether the framework changes the answer cannot "
                     f"be told. Run `bench run {study_name}{q} --frameworks {','.join(DEFAULT_FRAMEWORKS)}` "
                     f"(after `pip install -e \".[all]\"`).")
    if len(ran.seeds) < MIN_SEEDS:
        lines.append(f"{seeds_text(len(ran.seeds)).capitalize()}: nothing is decided below {MIN_SEEDS} seeds, neither "
                     f"between frameworks nor between configs. Run `bench run {study_name}{q} --seeds {MIN_SEEDS}` "
                     f"(finished runs are kept).")
    return lines
