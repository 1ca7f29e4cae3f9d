"""Typed parameters: one declaration per optimizer and schedule, read by everything that needs one.

A ``Declaration`` lists a family member's parameters (type, default, range) and the rules
that tie parameters together (warm-up shorter than its horizon). The study loader checks
every value against it before any run starts, the reference schedules and labels read
their defaults from it, and the tests draw their cases from it, so there is no second list.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import SpecError

REQUIRED = object()  # a parameter without a default: the study file must give it
ABSENT = object()  # an optional parameter with no default: present only when given


@dataclass(frozen=True)
class Param:
    """One parameter: its kind (see ``_NOUNS``), default, range and allowed values."""

    kind: str
    default: object = REQUIRED
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself is excluded
    high_open: bool = False
    choices: tuple = ()

    @property
    def rule(self) -> str:
        """What a valid value is, in words (the fix a message names)."""
        if self.choices:
            return "one of " + ", ".join(map(str, self.choices))
        noun = _NOUNS[self.kind]
        if self.low is not None and self.high is not None:
            return f"{noun} in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{noun} {'>' if self.low_open else '>='} {self.low:g}"
        return noun

    def valid(self, value) -> bool:
        if self.kind == "milestones":
            return (isinstance(value, list) and bool(value) and all(self._in_range(v, integer=True) for v in value)
                    and all(a < b for a, b in zip(value, value[1:])))
        if self.kind in ("number", "integer"):
            return self._in_range(value, integer=self.kind == "integer")
        if isinstance(value, bool) != (self.kind == "flag") or not isinstance(value, _TYPES[self.kind]):
            return False
        return not self.choices or value in self.choices

    def _in_range(self, value, integer: bool) -> bool:
        if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
            return False
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)


_NOUNS = {"number": "a finite number", "integer": "an integer", "milestones": "a list of increasing integers",
          "flag": "true or false", "text": "a string", "table": "a table", "list": "a list",
          "text or table": "a string or a table"}
_TYPES = {"flag": bool, "text": str, "table": dict, "list": list, "text or table": (str, dict)}


def number(default=REQUIRED, *, gt=None, ge=None, lt=None) -> Param:
    return Param("number", default, gt if gt is not None else ge, lt, low_open=gt is not None, high_open=lt is not None)


def integer(default=REQUIRED, *, ge=None) -> Param:
    return Param("integer", default, ge)


def flag(default: bool) -> Param:
    return Param("flag", default)


def choice(default, *choices) -> Param:
    return Param("text", default, choices=choices)


def of_kind(kind: str, default=ABSENT) -> Param:
    """A value checked for its type only ("text", "table", "list", "text or table"); its meaning is checked where it is used."""
    return Param(kind, default)


def milestones() -> Param:
    return Param("milestones", REQUIRED, 1)


@dataclass(frozen=True)
class Declaration:
    """One optimizer's or schedule's parameters, and the rules between them (predicate, what to fix)."""

    params: dict[str, Param]
    rules: tuple[tuple[Callable[[dict], bool], str], ...] = field(default=())

    @property
    def defaults(self) -> dict:
        return {k: p.default for k, p in self.params.items() if p.default not in (REQUIRED, ABSENT)}

    def typed(self, table: dict) -> dict:
        """``table`` with its numbers as floats, as a framework is handed them (torch refuses ``betas = (0, 0.999)``);
        the spec keeps them as written, so that run_ids do not move."""
        return {k: float(v) if k in self.params and self.params[k].kind == "number" else v for k, v in table.items()}

    def fill(self, kind: str, name: str, given: dict) -> dict:
        """``given`` checked and completed with the defaults; one SpecError line for the first problem."""
        unknown = sorted(set(given) - set(self.params))
        if unknown:
            raise SpecError(f"{kind} {name!r} has no parameter {unknown[0]!r}: allowed {', '.join(self.params) or 'none'}")
        full = {**self.defaults, **given}
        for key, param in self.params.items():
            if key not in full:
                if param.default is REQUIRED:
                    raise SpecError(f"{kind} {name!r} needs {key!r} ({param.rule}): add it to the {kind} table")
                continue
            if not param.valid(full[key]):  # values stay as written (0 stays 0), so run_ids do not move
                raise SpecError(f"{kind} {name!r}: {key} must be {param.rule}, got {full[key]!r}")
        for holds, fix in self.rules:
            if not holds(full):
                raise SpecError(f"{kind} {name!r}: {fix}, got {', '.join(f'{k} = {v!r}' for k, v in given.items())}")
        return full
