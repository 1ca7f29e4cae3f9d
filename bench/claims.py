"""A study's claims, checked per framework: small expressions over the results.

A claim in a study file:

    [[claims]]
    text = "cosine with warm-up ends with lower val loss than no schedule"
    check = 'final("val.loss", schedule="warmup_cosine") < final("val.loss", schedule="constant")'

``check`` may use comparisons, and/or/not, + - * /, numbers and strings, and these functions
(metrics are "split.metric"; keyword filters pick a config by lr, model, optimizer or
schedule, where a name matches its label or the name before its parameters; values
are means over seeds):

    final(metric, **where)           value at each run's last epoch
    at(metric, epoch, **where)       value at an epoch (counted from 1)
    min_(metric, **where), max_(...) lowest / highest over the epochs
    mean_(metric, **where)           mean over the epochs
    volatility(metric, **where)      how much it jumps: the std of its epoch-to-epoch changes
    mean_change(metric, **where)     how smooth it is: the mean absolute epoch-to-epoch change
    climbs(metric, **where)          true when the final value is above the run's lowest by more than the margin
    lowest(metric, by, epoch=None, **where), highest(...)
                                     the value of column ``by`` (e.g. "lr") whose config is lowest/highest,
                                     undecided when the next is within the margin
    status(**where)                  "done", "diverged", "collapsed", "failed" (or "mixed" across seeds)
    share(status, **where)           the fraction of the matching runs (seeds) that ended with this status
    close(a, b, rel=1e-6)            a equals b to a relative tolerance

A claim is evaluated per framework, and per protocol where a study runs more than one
(fresh and warm start); a claim with ``per_seed = true`` is evaluated for each seed alone. A claim
with ``untested = "why"`` is one the study's runs cannot settle: its check's numbers are shown, and its
verdict is *cannot tell* for that reason.

A comparison of numbers over seeds holds only beyond a margin: the claim's own ``margin`` when
it states one, else the spread between seeds when there are ``evidence.MIN_SEEDS`` of them. Within
the margin, or with neither, it is *cannot tell*, and so is an and/or that it decides (three-valued
logic). Labels, statuses and shares compare exactly, and so does a number against a constant the claim
states (its own tolerance, as "moves less than 0.02"), at any number of seeds; ``close`` has its own
tolerance. Each verdict carries the number of seeds it rests on.
A study's claims are not evaluated on a quick run unless the claim says ``quick = true``.

Expressions are parsed, and only these names, constants, comparisons and boolean
operators are accepted, so a study file cannot run arbitrary code.
"""

from __future__ import annotations

import ast
import math

import pandas as pd

from .errors import SpecError
from .evidence import MIN_SEEDS, seeds_text, spread
from .schema import EPOCH_METRICS, STATUSES, STUDY_METRICS

FUNCTIONS = ("final", "at", "min_", "max_", "mean_", "volatility", "mean_change", "climbs", "lowest", "highest", "status",
             "share", "close")
_ALLOWED_NODES = (ast.Expression, ast.Compare, ast.BoolOp, ast.UnaryOp, ast.Not, ast.And, ast.Or, ast.Call,
                  ast.Constant, ast.keyword, ast.Name, ast.Load, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE,
                  ast.USub, ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Div)
FILTERS = ("lr", "model", "optimizer", "schedule", "batch_size")


def parse_check(check: str) -> ast.Expression:
    """The parsed expression, or a SpecError naming what is not allowed."""
    try:
        tree = ast.parse(check, mode="eval")
    except SyntaxError as e:
        raise SpecError(f"claim check {check!r} is not a valid expression: {e.msg}") from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise SpecError(f"claim check {check!r} uses {type(node).__name__}, which claims do not allow")
        if isinstance(node, ast.Name) and node.id not in FUNCTIONS:
            raise SpecError(f"claim check {check!r} uses {node.id!r}: claims know {', '.join(FUNCTIONS)}")
    return tree


# Each function's own arguments after the metric (the rest are filters), and what they must be.
_ARGUMENTS = {"final": (), "at": ("epoch",), "min_": (), "max_": (), "mean_": (), "volatility": (), "mean_change": (),
              "climbs": (),
              "lowest": ("by", "epoch"), "highest": ("by", "epoch"), "status": (), "share": ("status",), "close": ("rel",)}
_NO_METRIC = ("status", "share", "close")


def check_claim(check: str, configs: pd.DataFrame, last_epoch: int | None = None) -> None:
    """A claim that could never be evaluated is a SpecError when the study loads, not a verdict.

    Names a metric lrbench does not record, an argument a function does not take, a filter that
    matches none of ``configs`` (the study's configs: lr, model, optimizer, schedule, batch_size), or
    an epoch past ``last_epoch`` (the study's last, as written)."""

    tree = parse_check(check)
    for node in ast.walk(tree):  # arithmetic on constants alone fails here, or never
        if isinstance(node, ast.BinOp | ast.UnaryOp) and not any(isinstance(n, ast.Call | ast.Compare) for n in ast.walk(node)):
            try:
                _evaluate(node, None)
            except (ArithmeticError, TypeError) as e:
                raise SpecError(f"claim check {check!r}: {ast.unparse(node)} cannot be evaluated ({e}): correct it") from e
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        if not isinstance(node.func, ast.Name):
            raise SpecError(f"claim check {check!r}: call the functions by name ({', '.join(FUNCTIONS)})")
        name, args = node.func.id, node.args
        if name not in _NO_METRIC:
            if not args or not isinstance(args[0], ast.Constant):
                raise SpecError(f"claim check {check!r}: {name}() takes a metric first, as \"val.loss\"")
            check_metric(args[0].value, f"claim check {check!r}")
        if name == "at" and last_epoch and len(args) > 1 and isinstance(args[1], ast.Constant) and \
                isinstance(args[1].value, int) and not 1 <= args[1].value <= last_epoch:
            raise SpecError(f"claim check {check!r}: at() epoch {args[1].value}: the study's runs have epochs 1 to "
                            f"{last_epoch}")
        if name == "share" and not (args and isinstance(args[0], ast.Constant) and args[0].value in STATUSES):
            raise SpecError(f"claim check {check!r}: share() takes a status first, one of {', '.join(STATUSES)}")
        own = _ARGUMENTS[name]
        where = {}
        for kw in node.keywords:
            if kw.arg in own:
                continue
            if kw.arg not in FILTERS:
                raise SpecError(f"claim check {check!r}: {name}() has no argument {kw.arg!r}: it takes "
                                f"{', '.join((*own, *FILTERS))}")
            if not isinstance(kw.value, ast.Constant):
                raise SpecError(f"claim check {check!r}: filter {kw.arg}= takes a number or a string")
            where[kw.arg] = kw.value.value
        if name != "close" and where:
            check_filter(where, configs, f"claim check {check!r}: {name}({_kw(where)[2:]})")


def check_metric(metric, what: str) -> None:
    """A metric lrbench records, or one line naming ``what`` asked for it and what there is."""

    known = sorted(f"{s}.{m}" for s, m in EPOCH_METRICS + STUDY_METRICS)
    if not (isinstance(metric, str) and (metric in known or metric.startswith("train.weight_norm/"))):
        raise SpecError(f"{what}: unknown metric {metric!r}: lrbench records {', '.join(known)}, train.weight_norm/<layer>")


def check_filter(where: dict, configs: pd.DataFrame, what: str) -> None:
    """``where`` names at least one of the study's ``configs``, or one line naming ``what`` and the values there are."""
    try:
        empty = select(configs, where).empty
    except (TypeError, ValueError, KeyError):
        empty = True
    if empty:
        raise SpecError(f"{what} matches none of the study's configs: its {'/'.join(where)} values are "
                        + "; ".join(", ".join(map(str, sorted(set(configs[k]), key=str))) for k in where if k in configs))


def select(df: pd.DataFrame, where: dict) -> pd.DataFrame:
    """The rows of the config that ``where`` names; a name matches its label or the name before its parameters."""
    for key, value in where.items():
        if key not in FILTERS:
            raise SpecError(f"claims filter by {', '.join(FILTERS)}, not {key!r}")
        column = df[key]
        if key in ("lr", "batch_size"):
            df = df[(column - float(value)).abs() <= 1e-12 * max(1.0, abs(float(value)))]
        elif (column == value).any():
            df = df[column == value]
        else:
            df = df[column.str.split("(").str[0] == value]
    return df


class Undecided:
    """A value the evidence cannot settle (the best of several configs within the margin of the next)."""

    def __init__(self, why: str):
        self.why = why


class _Rows:
    """One framework's (protocol's, seed's) epoch rows and run statuses, split by metric once for all its claims."""

    def __init__(self, df: pd.DataFrame, manifest: pd.DataFrame):
        self.df = df[df["step"].isna()]
        self.by_metric = dict(iter(self.df.groupby(["split", "metric"], sort=False)))
        self.status_of = manifest.drop_duplicates("run_id", keep="last").set_index("run_id")["status"]


class _Results:
    """The evaluation functions over one framework's rows; remembers every value it returns.

    Numbers come back per seed (a Series indexed by seed), so that a comparison can weigh a difference
    against the spread between seeds; a claim sees them as means."""

    def __init__(self, rows: _Rows, margin: float | None = None):
        self.df, self.by_metric, self.status_of = rows.df, rows.by_metric, rows.status_of
        self.margin = margin
        self.numbers: list[str] = []
        self.undecided: list[str] = []

    def _runs(self, where: dict) -> pd.DataFrame:
        df = select(self.df, where)
        if df.empty:
            raise LookupError(f"no runs match {_kw(where)[2:]}")
        return df

    def _metric(self, metric: str, where: dict) -> pd.DataFrame:
        split, name = metric.split(".", 1)
        rows = select(self.by_metric.get((split, name), self.df.iloc[:0]), where)
        if rows.empty:
            self._runs(where)  # no runs match at all: say that
            raise LookupError(f"no {metric} rows for {_kw(where)[2:] or 'these runs'}")
        configs = rows.drop_duplicates("run_id")[list(FILTERS)].drop_duplicates()
        if len(configs) > 1:
            raise LookupError(f"{_kw(where)[2:] or 'no filter'} matches {len(configs)} configs: add a filter")
        return rows

    def _note(self, call: str, value):
        shown = value.mean() if isinstance(value, pd.Series) else value
        if isinstance(shown, float) and math.isnan(shown):  # e.g. volatility of one epoch: no verdict, not "not held"
            raise LookupError(f"{call} is not defined for these runs")
        self.numbers.append(f"{call} = {shown:.4g}" if isinstance(shown, float) else f"{call} = {shown}")
        return value

    def margin_for(self, *series: pd.Series) -> float | None:
        """The claim's own margin, else the seed spread when there are MIN_SEEDS seeds; None when neither."""
        if self.margin:
            return self.margin
        seeds = min(len(s.dropna()) for s in series)
        return spread(*series) if seeds >= MIN_SEEDS else None

    def _no_margin(self, series) -> str:
        n = min(len(s.dropna()) for s in series)
        return f"{seeds_text(n)} and no margin (give the claim a margin, or run {MIN_SEEDS} seeds)"

    def final(self, metric, **where):
        rows = self._metric(metric, where).sort_values("epoch")
        return self._note(f"final({metric!r}{_kw(where)})", rows.groupby("seed")["value"].last())

    def at(self, metric, epoch, **where):
        last = int(self.df["epoch"].max()) if len(self.df) else 0
        if not 1 <= epoch <= last:  # a quick or shortened run of a study that reaches it
            raise LookupError(f"epoch {epoch} is past these runs' last, {last}")
        rows = self._metric(metric, where)
        rows = rows[rows["epoch"] == epoch]
        if rows.empty:
            raise LookupError(f"no epoch {epoch} for {where}")
        return self._note(f"at({metric!r}, {epoch}{_kw(where)})", rows.groupby("seed")["value"].mean())

    def min_(self, metric, **where):
        return self._note(f"min_({metric!r}{_kw(where)})", self._metric(metric, where).groupby("seed")["value"].min())

    def max_(self, metric, **where):
        return self._note(f"max_({metric!r}{_kw(where)})", self._metric(metric, where).groupby("seed")["value"].max())

    def mean_(self, metric, **where):
        return self._note(f"mean_({metric!r}{_kw(where)})", self._metric(metric, where).groupby("seed")["value"].mean())

    def volatility(self, metric, **where):
        rows = self._metric(metric, where).sort_values("epoch")
        value = rows.groupby("seed")["value"].apply(lambda v: v.diff().std())
        return self._note(f"volatility({metric!r}{_kw(where)})", value)

    def mean_change(self, metric, **where):
        rows = self._metric(metric, where).sort_values("epoch")
        value = rows.groupby("seed")["value"].apply(lambda v: v.diff().abs().mean())
        return self._note(f"mean_change({metric!r}{_kw(where)})", value)

    def climbs(self, metric, **where):
        """Whether the final value is above the run's lowest by more than the margin (overfitting, for a loss)."""
        rows = self._metric(metric, where).sort_values("epoch")
        final = rows.groupby("seed")["value"].last()
        rise = float((final - rows.groupby("seed")["value"].min()).mean())
        margin = self.margin_for(final)
        call = f"climbs({metric!r}{_kw(where)}): final - lowest = {rise:.4g}"
        if margin is None:
            self.numbers.append(call)
            return Undecided(f"{call}: {self._no_margin([final])}")
        self.numbers.append(f"{call} (margin {margin:.3g})")
        return rise > margin

    def _extreme(self, which, metric, by, epoch, where):
        split, name = metric.split(".", 1)
        rows = self._runs(where)
        rows = rows[(rows["split"] == split) & (rows["metric"] == name)]
        if epoch is None:
            per_run = rows.sort_values("epoch").groupby("run_id").last()
        else:
            per_run = rows[rows["epoch"] == epoch].set_index("run_id")
        groups = {k: g.groupby("seed")["value"].mean() for k, g in per_run.groupby(by)}
        means = pd.Series({k: float(v.mean()) for k, v in groups.items()}).sort_values(ascending=which == "lowest")
        best = means.index[0]
        best = float(best) if by in ("lr", "batch_size") else best
        shown = ", ".join(f"{k:g}: {v:.4g}" if isinstance(k, float) else f"{k}: {v:.4g}" for k, v in means.items())
        call = f"{which}({metric!r}, by={by!r}{'' if epoch is None else f', epoch={epoch}'})"
        self.numbers.append(f"{call} = {best:g} ({shown})" if isinstance(best, float) else f"{call} = {best} ({shown})")
        if len(means) < 2:
            return best
        margin = self.margin_for(*groups.values())
        if margin is None:
            return Undecided(f"{call}: {self._no_margin(groups.values())}")
        gap = abs(means.iloc[1] - means.iloc[0])
        if gap <= margin:
            return Undecided(f"{call}: the next ({means.index[1]:g}) is {gap:.3g} away, within the margin {margin:.3g}"
                             if isinstance(means.index[1], float) else f"{call}: the next is within the margin")
        return best

    def lowest(self, metric, by, epoch=None, **where):
        return self._extreme("lowest", metric, by, epoch, where)

    def highest(self, metric, by, epoch=None, **where):
        return self._extreme("highest", metric, by, epoch, where)

    def _statuses(self, where: dict) -> pd.Series:
        return self.status_of.reindex(self._runs(where)["run_id"].unique()).fillna("unknown")

    def status(self, **where):
        statuses = self._statuses(where)
        value = statuses.iloc[0] if statuses.nunique() == 1 else "mixed"
        return self._note(f"status({_kw(where)[2:]})", value)

    def share(self, status, **where):
        statuses = self._statuses(where)
        return self._note(f"share({status!r}{_kw(where)}) of {len(statuses)} runs", float((statuses == status).mean()))

    @staticmethod
    def close(a, b, rel=1e-6):
        return math.isclose(_mean(a), _mean(b), rel_tol=rel)

    def compare(self, a, op, b):
        """True, False, or None (cannot tell): a comparison of numbers over seeds holds only beyond the margin."""
        for x in (a, b):
            if isinstance(x, Undecided):
                self.undecided.append(x.why)
                return None
        series = [x for x in (a, b) if isinstance(x, pd.Series)]
        if len(series) < 2 or isinstance(op, (ast.Eq, ast.NotEq)):  # labels, statuses, shares, a stated threshold
            return _OPS[type(op)](_mean(a), _mean(b))
        margin = self.margin_for(*series)
        ma, mb = _mean(a), _mean(b)
        if margin is None:
            self.undecided.append(f"{ma:.4g} against {mb:.4g}: {self._no_margin(series)}")
            return None
        beyond = (mb - ma) if isinstance(op, (ast.Lt, ast.LtE)) else (ma - mb)
        if abs(beyond) <= margin:
            self.undecided.append(f"{ma:.4g} against {mb:.4g}: {abs(ma - mb):.3g} apart, within the margin {margin:.3g}")
            return None
        return beyond > 0


_OPS = {ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b, ast.Lt: lambda a, b: a < b,
        ast.LtE: lambda a, b: a <= b, ast.Gt: lambda a, b: a > b, ast.GtE: lambda a, b: a >= b}
_ARITHMETIC = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
               ast.Div: lambda a, b: a / b}


def _mean(value):
    return float(value.mean()) if isinstance(value, pd.Series) else value


def _truth(value):
    """True, False or None (cannot tell): Kleene's three-valued logic for and / or / not."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, Undecided):
        return None
    return bool(_mean(value))


def _evaluate(node, results: _Results):
    """The claim's value: numbers per seed, labels, or a three-valued truth."""
    ev = lambda n: _evaluate(n, results)  # noqa: E731
    if isinstance(node, ast.Expression):
        return ev(node.body)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Call):
        return getattr(results, node.func.id)(*map(ev, node.args), **{k.arg: ev(k.value) for k in node.keywords})
    if isinstance(node, ast.UnaryOp):
        value = ev(node.operand)
        if isinstance(node.op, ast.USub):
            return -value
        truth = _truth(value)
        return None if truth is None else not truth
    if isinstance(node, ast.BinOp):
        return _ARITHMETIC[type(node.op)](ev(node.left), ev(node.right))
    if isinstance(node, ast.BoolOp):
        truths = [_truth(ev(v)) for v in node.values]
        decisive = isinstance(node.op, ast.Or)  # or: any True decides; and: any False decides
        if decisive in truths:
            return decisive
        return None if None in truths else not decisive
    if isinstance(node, ast.Compare):
        left, truths = ev(node.left), []
        for op, right_node in zip(node.ops, node.comparators):
            right = ev(right_node)
            truths.append(results.compare(left, op, right))
            left = right
        return False if False in truths else (None if None in truths else True)
    raise SpecError(f"claims do not allow {type(node).__name__}")


def _kw(where: dict) -> str:
    return "".join(f", {k}={v!r}" for k, v in where.items())


def evaluate_claims(claims: list[dict], df: pd.DataFrame, manifest: pd.DataFrame) -> pd.DataFrame:
    """One row per claim and framework (and protocol, and seed for per-seed claims):
    held / not held / cannot tell, with the numbers and where the claim comes from.

    ``df`` carries each run's protocol (see ``results.with_run_columns``)."""
    protocols = list(dict.fromkeys(df["protocol"])) if "protocol" in df else []
    rows, parts = [], {}
    for claim in claims:
        tree = parse_check(claim["check"])
        splits = ("framework",) + (("protocol",) if len(protocols) > 1 else ()) + (("seed",) if claim.get("per_seed") else ())
        if splits not in parts:  # the rows of each framework (and protocol, seed) are split once for every claim
            parts[splits] = [(dict(zip(splits, key if isinstance(key, tuple) else (key,))),
                              _Rows(part, manifest[manifest["run_id"].isin(part["run_id"])]))
                             for key, part in df.groupby(list(splits), sort=True)]
        for key, part in parts[splits]:
            results = _Results(part, claim.get("margin"))
            try:
                truth = _truth(_evaluate(tree, results))  # an untested claim's numbers are shown too
                if claim.get("untested"):
                    truth, results.undecided = None, [claim["untested"]]
                verdict = {True: "held", False: "not held", None: "cannot tell: " + "; ".join(results.undecided)}[truth]
            except (LookupError, KeyError, ValueError, SpecError) as e:
                verdict = f"cannot tell: {e}"
            except (ArithmeticError, TypeError) as e:  # the claim's own arithmetic: its verdict, never the report's end
                verdict = f"cannot tell: the claim cannot be evaluated ({e})"
            rows.append({"claim": claim["text"], "source": claim.get("source", ""), **key, "verdict": verdict,
                         "seeds": part.df["seed"].nunique(), "numbers": "; ".join(results.numbers)})
    return pd.DataFrame(rows)
