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
    lowest(metric, by, epoch=None, **where), highest(...)
                                     the value of column ``by`` (e.g. "lr") whose config is lowest/highest
    status(**where)                  "done", "diverged", "collapsed", "failed" (or "mixed" across seeds)
    share(status, **where)           the fraction of the matching runs (seeds) that ended with this status
    close(a, b, rel=1e-6)            a equals b to a relative tolerance

A claim is evaluated per framework, and per protocol where a study runs more than one
(fresh and warm start); a claim with ``per_seed = true`` is evaluated for each seed alone.

Expressions are parsed, and only these names, constants, comparisons and boolean
operators are accepted, so a study file cannot run arbitrary code.
"""

from __future__ import annotations

import ast
import math

import pandas as pd

from .errors import SpecError

FUNCTIONS = ("final", "at", "min_", "max_", "mean_", "volatility", "lowest", "highest", "status", "share", "close")
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
_ARGUMENTS = {"final": (), "at": ("epoch",), "min_": (), "max_": (), "mean_": (), "volatility": (),
              "lowest": ("by", "epoch"), "highest": ("by", "epoch"), "status": (), "share": ("status",), "close": ("rel",)}
_NO_METRIC = ("status", "share", "close")


def check_claim(check: str, configs: pd.DataFrame) -> None:
    """A claim that could never be evaluated is a SpecError when the study loads, not a verdict.

    Names a metric lrbench does not record, an argument a function does not take, or a filter that
    matches none of ``configs`` (the study's configs: lr, model, optimizer, schedule, batch_size)."""
    from .results import EPOCH_METRICS, STATUSES

    known = sorted(f"{s}.{m}" for s, m in EPOCH_METRICS)
    for node in ast.walk(parse_check(check)):
        if not isinstance(node, ast.Call):
            continue
        if not isinstance(node.func, ast.Name):
            raise SpecError(f"claim check {check!r}: call the functions by name ({', '.join(FUNCTIONS)})")
        name, args = node.func.id, node.args
        if name not in _NO_METRIC:
            if not args or not isinstance(args[0], ast.Constant):
                raise SpecError(f"claim check {check!r}: {name}() takes a metric first, as \"val.loss\"")
            metric = args[0].value
            if not (isinstance(metric, str) and (metric in known or metric.startswith("train.weight_norm/"))):
                raise SpecError(f"claim check {check!r}: unknown metric {metric!r}: lrbench records {', '.join(known)}, "
                                f"train.weight_norm/<layer>")
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
        if name == "close" or not where:
            continue
        try:
            empty = select(configs, where).empty
        except (TypeError, ValueError):
            empty = True
        if empty:
            raise SpecError(f"claim check {check!r}: {name}({_kw(where)[2:]}) matches none of the study's configs: "
                            f"its {'/'.join(where)} values are "
                            + "; ".join(", ".join(map(str, sorted(set(configs[k]), key=str))) for k in where))


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


class _Results:
    """The evaluation functions over one framework's rows; remembers every value it returns."""

    def __init__(self, df: pd.DataFrame, manifest: pd.DataFrame):
        self.df = df[df["step"].isna()]
        self.status_of = manifest.drop_duplicates("run_id", keep="last").set_index("run_id")["status"]
        self.numbers: list[str] = []

    def _runs(self, where: dict) -> pd.DataFrame:
        df = select(self.df, where)
        if df.empty:
            raise LookupError(f"no runs match {where}")
        return df

    def _metric(self, metric: str, where: dict) -> pd.DataFrame:
        split, name = metric.split(".", 1)
        rows = self._runs(where)
        rows = rows[(rows["split"] == split) & (rows["metric"] == name)]
        if rows.empty:
            raise LookupError(f"no {metric} rows for {where or 'these runs'}")
        configs = rows.drop_duplicates("run_id")[list(FILTERS)].drop_duplicates()
        if len(configs) > 1:
            raise LookupError(f"{where} matches {len(configs)} configs: add a filter")
        return rows

    def _note(self, call: str, value):
        if isinstance(value, float) and math.isnan(value):  # e.g. volatility of one epoch: no verdict, not "not held"
            raise LookupError(f"{call} is not defined for these runs")
        self.numbers.append(f"{call} = {value:.4g}" if isinstance(value, float) else f"{call} = {value}")
        return value

    def final(self, metric, **where):
        rows = self._metric(metric, where).sort_values("epoch")
        value = float(rows.groupby("run_id")["value"].last().mean())
        return self._note(f"final({metric!r}{_kw(where)})", value)

    def at(self, metric, epoch, **where):
        rows = self._metric(metric, where)
        rows = rows[rows["epoch"] == epoch]
        if rows.empty:
            raise LookupError(f"no epoch {epoch} for {where}")
        return self._note(f"at({metric!r}, {epoch}{_kw(where)})", float(rows["value"].mean()))

    def min_(self, metric, **where):
        value = float(self._metric(metric, where).groupby("run_id")["value"].min().mean())
        return self._note(f"min_({metric!r}{_kw(where)})", value)

    def max_(self, metric, **where):
        value = float(self._metric(metric, where).groupby("run_id")["value"].max().mean())
        return self._note(f"max_({metric!r}{_kw(where)})", value)

    def mean_(self, metric, **where):
        value = float(self._metric(metric, where).groupby("run_id")["value"].mean().mean())
        return self._note(f"mean_({metric!r}{_kw(where)})", value)

    def volatility(self, metric, **where):
        rows = self._metric(metric, where).sort_values("epoch")
        value = float(rows.groupby("run_id")["value"].apply(lambda v: v.diff().std()).mean())
        return self._note(f"volatility({metric!r}{_kw(where)})", value)

    def _extreme(self, which, metric, by, epoch, where):
        split, name = metric.split(".", 1)
        rows = self._runs(where)
        rows = rows[(rows["split"] == split) & (rows["metric"] == name)]
        if epoch is None:
            per_run = rows.sort_values("epoch").groupby("run_id").last()
        else:
            per_run = rows[rows["epoch"] == epoch].set_index("run_id")
        means = per_run.groupby(by)["value"].mean()
        best = means.idxmin() if which == "lowest" else means.idxmax()
        best = float(best) if by in ("lr", "batch_size") else best
        shown = ", ".join(f"{k:g}: {v:.4g}" if isinstance(k, float) else f"{k}: {v:.4g}" for k, v in means.items())
        self.numbers.append(f"{which}({metric!r}, by={by!r}{'' if epoch is None else f', epoch={epoch}'}) = {best:g}"
                            f" ({shown})" if isinstance(best, float) else f"{which}(...) = {best} ({shown})")
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
        return math.isclose(a, b, rel_tol=rel)


def _kw(where: dict) -> str:
    return "".join(f", {k}={v!r}" for k, v in where.items())


def evaluate_claims(claims: list[dict], df: pd.DataFrame, manifest: pd.DataFrame) -> pd.DataFrame:
    """One row per claim and framework (and protocol, and seed for per-seed claims):
    held / not held / cannot tell, with the numbers and where the claim comes from.

    ``df`` carries each run's protocol (see ``results.with_run_columns``)."""
    protocols = list(dict.fromkeys(df["protocol"])) if "protocol" in df else []
    rows = []
    for claim in claims:
        tree = parse_check(claim["check"])
        code = compile(tree, "<claim>", "eval")
        splits = ["framework"] + (["protocol"] if len(protocols) > 1 else []) + (["seed"] if claim.get("per_seed") else [])
        for key, part in df.groupby(splits, sort=True):
            key = dict(zip(splits, key if isinstance(key, tuple) else (key,)))
            results = _Results(part, manifest[manifest["run_id"].isin(part["run_id"])])
            names = {name: getattr(results, name) for name in FUNCTIONS}
            try:
                verdict = "held" if eval(code, {"__builtins__": {}}, names) else "not held"  # noqa: S307 (parsed above)
            except (LookupError, KeyError, ValueError, SpecError) as e:
                verdict = f"cannot tell: {e}"
            rows.append({"claim": claim["text"], "source": claim.get("source", ""), **key, "verdict": verdict,
                         "numbers": "; ".join(results.numbers)})
    return pd.DataFrame(rows)
