"""Property: a study file built from a valid one with values mutated (types, ranges, structure)
either loads and trains one epoch of digits with the applied lr the reference gives, or is
refused at load with one line. Never a traceback, never a run that fails for a reason the
loader could have seen."""

import json
import math

import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bench.errors import BenchError
from bench.optimizers import OPTIMIZERS
from bench.params import REQUIRED
from bench.runner import train
from bench.schedules import SCHEDULES, Schedule
from bench.spec import BASE, load_study

pytestmark = pytest.mark.env_torch  # the tox envs that run this file (see tests/conftest.py)

VALID = {
    "dataset": "digits", "model": "mlp", "epochs": 1, "batch_size": 64, "lr": 0.1, "train_size": 256, "val_size": 64,
    "optimizer": {"name": "sgd", "momentum": 0.9}, "schedule": {"name": "step", "step_size": 1, "gamma": 0.5},
}

scalars = st.one_of(
    st.integers(-3, 300), st.sampled_from([0, 1, 2, 10**6]),
    st.floats(allow_nan=True, allow_infinity=True, width=32), st.sampled_from([0.0, 0.5, 0.999, 1.0, 1.5, -0.1]),
    st.booleans(), st.sampled_from(["", "0.1", "unit", "torch", "fresh", "warm_start", "after_epoch", "zscore"]),
)
wild = st.one_of(scalars, st.lists(scalars, max_size=3),
                 st.dictionaries(st.sampled_from(["mean", "std", "name"]), scalars, max_size=2))
plausible = st.sampled_from([0, 1, 2, 3, 0.0, 0.01, 0.1, 0.5, 0.9, True, False, [1, 2], [2], "keras", "after_epoch", "epoch",
                             "glorot", "float64", {"mean": 0.5, "std": 0.5}])  # values a user would write, valid somewhere
values = st.one_of(plausible, plausible, wild)


def toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    return "{ " + ", ".join(f"{k} = {toml(v)}" for k, v in value.items()) + " }"


@st.composite
def studies(draw):
    """A valid study with an optimizer and a schedule drawn from the declarations, then one or two values mutated."""
    study = json.loads(json.dumps(VALID))
    study["optimizer"] = {"name": draw(st.sampled_from(sorted(OPTIMIZERS)))}
    study["schedule"] = {"name": draw(st.sampled_from(sorted(SCHEDULES)))}
    for table, family in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES)):  # required parameters, valid values
        for key, param in family[study[table]["name"]].params.items():
            if param.default is REQUIRED:
                study[table][key] = [2, 4] if param.kind == "milestones" else 2 if param.kind == "integer" else 0.5
    for _ in range(draw(st.integers(1, 2))):
        site = draw(st.sampled_from(["optimizer", "schedule", "base", "grid"]))
        if site in ("optimizer", "schedule"):
            family = OPTIMIZERS if site == "optimizer" else SCHEDULES
            if not isinstance(study[site], dict):  # a base mutation replaced the whole table already
                continue
            params = sorted(family[study[site]["name"]].params)
            if params:
                study[site][draw(st.sampled_from(params))] = draw(values)  # a declared parameter, any value
        elif site == "base":
            study[draw(st.sampled_from(sorted(set(BASE) - {"epochs", "name", "figures"})))] = draw(values)
        else:
            study["grid"] = {"lr": draw(st.lists(st.one_of(st.sampled_from([0.3, 0.1, 0.01]), scalars), min_size=1, max_size=2))}
    return study


def write(study: dict, path) -> None:
    tables = {k: v for k, v in study.items() if k == "grid"}
    lines = [f"{k} = {toml(v)}" for k, v in study.items() if k not in tables]
    lines += [f"[grid]\nlr = {toml(tables['grid']['lr'])}"] if tables else []
    path.write_text("\n".join(lines) + "\n")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(study=studies())
def test_a_mutated_study_loads_and_runs_or_is_one_line(tmp_path, study):
    path = tmp_path / "mutated.toml"
    write(study, path)
    try:
        specs = load_study(str(path)).runs(["torch"])
    except BenchError as e:
        assert "\n" not in str(e) and str(e), str(e)
        event("refused at load")
        return
    event("loaded and trained")
    spec = specs[0]
    outcome = train(spec, threads=1)
    assert outcome.manifest["status"] in ("done", "diverged", "collapsed"), (path.read_text(), outcome.manifest["error"])
    rows = pd.DataFrame(outcome.rows)
    applied = rows[(rows["metric"] == "lr") & (rows["epoch"] == 1)]["value"].iloc[0]
    reference = Schedule(spec.schedule["name"], spec.lr, {k: v for k, v in spec.schedule.items() if k != "name"})
    reference = reference.lr_at(0, spec.steps_per_epoch)  # the first step's: a warm-up's start included
    assert math.isclose(applied, reference, rel_tol=1e-6), (path.read_text(), applied, reference)
