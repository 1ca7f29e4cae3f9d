"""What every backend must do, checked for the frameworks under test.

The frameworks are those named in BENCH_FRAMEWORKS (each tox env names its own), else
every installed one; a named framework that is not installed fails, it is not skipped.
The tests run in this process, so TensorFlow (keras) and Paddle go in separate runs.
"""

import dataclasses
import inspect
import math
import numbers
import os
import subprocess
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backends import DEFAULT_FRAMEWORKS, installed, load_adapter, load_baselines
from backends import FRAMEWORKS as REGISTRY
from bench.data import load_dataset
from bench.executors import groups, run_local
from bench.lr_control import LrControl
from bench.models import architecture
from bench.optimizers import DEPARTURES, reference_update
from bench.optimizers import OPTIMIZERS as DECLARED
from bench.results import COLUMNS, TIMING_METRICS
from bench.runner import train
from bench.schedules import SCHEDULES, Schedule
from bench.spec import RunSpec, load_study, optimizer_params
from tests import native_table
from tests.cases import SCHEDULE_CASES, STEP_CASES, WARMUP_CASES, schedule_name
from tests.frameworks.contract import (
    Scheduled,
    applied_lrs,
    applied_step_lrs,
    built,
    lenet_logits,
    mlp_gradients,
    mlp_logits,
    weights_round_trip,
)

pytestmark = [pytest.mark.env_torch, pytest.mark.env_keras, pytest.mark.env_keras_jax, pytest.mark.env_keras_torch,
              pytest.mark.env_paddle, pytest.mark.env_jax]  # the tox envs that run this file (see tests/conftest.py)

NAMED = os.environ.get("BENCH_FRAMEWORKS")
FRAMEWORKS = NAMED.split(",") if NAMED else [f for f in DEFAULT_FRAMEWORKS if installed(f)]
LR_TOLERANCE = {"torch": 1e-9}  # the others compute some schedules in float32 arithmetic


def other_value(param):
    """A valid value of a declared parameter other than its default (choices are framework-specific: kept)."""
    if param.kind == "flag":
        return not param.default
    if param.kind == "number" and param.high is not None:
        return (param.low + param.high) / 2
    if param.kind == "number":
        return param.default * 10 if param.default else 1e-4
    return param.default


# From the core's declarations: each optimizer at its defaults, and with every parameter changed.
OPTIMIZER_CASES = [{"name": name} for name in DECLARED] + [
    {"name": name, **{k: other_value(p) for k, p in declaration.params.items() if not p.choices}}
    for name, declaration in DECLARED.items()] + [
    {"name": "sgd", "momentum": 0.9, "nesterov": nesterov, "momentum_form": "keras"} for nesterov in (False, True)]


@pytest.fixture(params=FRAMEWORKS)
def framework(request):
    assert not {"keras", "paddle"} <= set(FRAMEWORKS), (
        "TensorFlow and Paddle crash in one process: set BENCH_FRAMEWORKS to torch,keras or torch,paddle")
    assert installed(request.param), f"{request.param} is not installed in this environment"
    return request.param


@pytest.mark.parametrize("case", sorted(SCHEDULE_CASES))
def test_applied_lr_matches_reference(framework, case):
    applied, expected = applied_lrs(framework, case)
    np.testing.assert_allclose(applied, expected, rtol=0, atol=LR_TOLERANCE.get(framework, 1e-7))


@pytest.mark.parametrize("case", sorted({**STEP_CASES, **WARMUP_CASES}))
def test_applied_lr_matches_reference_at_every_step(framework, case):
    """Every step of two epochs, one-cycle's last step included, to 1e-7; every epoch schedule behind a warm-up
    of 18 steps (of 12 an epoch), so the warm-up's factor meets the epoch schedule's first change."""
    applied, expected = applied_step_lrs(framework, case)
    assert len(applied) == len(expected) and len(set(np.round(expected, 12))) > 2
    np.testing.assert_allclose(applied, expected, rtol=0, atol=1e-7)


def _originals_lr(schedule: str, epoch: int) -> float:
    """The lr the `schedules` original applies in epoch ``epoch`` (from 0), written from its code:
    its two schedulers run after each epoch (``param_group['lr'] = scheduler(epoch)``), torch's
    MultiStepLR is stepped after each epoch; the optimizer is built with lr 0.3."""
    if schedule == "constant" or (epoch == 0 and schedule in ("inverse_sqrt", "cosine")):
        return 0.3
    if schedule == "inverse_sqrt":  # SquareRootScheduler(lr=0.1)(e) = 0.1 * (e + 1) ** -0.5, called with e = epoch - 1
        return 0.1 * epoch**-0.5
    if schedule == "multistep":  # MultiStepLR(milestones=[15, 30], gamma=0.5)
        return 0.3 * 0.5 ** sum(epoch >= m for m in (15, 30))
    e = epoch - 1  # CosineScheduler(max_update=20, base_lr=0.3, final_lr=0.01)(e)
    return 0.01 + (0.3 - 0.01) * (1 + math.cos(math.pi * e / 20)) / 2 if e <= 20 else 0.01


@pytest.mark.parametrize("config", range(4))
def test_schedules_study_applies_the_originals_lr_every_epoch(framework, config):
    """Each `schedules` config, as the study file defines it, against the original's own formulas."""
    spec = load_study("schedules").runs([framework])[config]
    run = Scheduled(framework, spec.schedule, spec.lr)
    applied = [run.epoch(np.random.default_rng(epoch).permutation(16), 8)[0] for epoch in range(spec.epochs)]
    expected = [_originals_lr(spec.schedule["name"], e) for e in range(spec.epochs)]
    np.testing.assert_allclose(applied, expected, rtol=0, atol=1e-7)
    if spec.schedule["name"] == "inverse_sqrt":
        np.testing.assert_allclose(applied[:4], [0.3, 0.1, 0.0707107, 0.0577350], atol=1e-7)
    if spec.schedule["name"] == "cosine":
        np.testing.assert_allclose(applied[:3], [0.3, 0.3, 0.2982148], atol=1e-7)
        assert applied[21:] == pytest.approx([0.01] * (spec.epochs - 21), abs=1e-9)


def test_evaluate_reads_the_split_it_is_asked_for(framework):
    """evaluate("train") is the whole training set in its stored order, evaluate() the validation set: each the
    summed cross-entropy and the argmax of the framework's own logits over that set (batches of 7: the last partial)."""
    rng = np.random.default_rng(3)
    train_x, val_x = (rng.normal(size=(n, 1, 8, 8)).astype(np.float32) for n in (24, 10))
    train_y, val_y = rng.integers(0, 10, 24), rng.integers(0, 10, 10)
    backend, _ = built(framework, data=(train_x, train_y, val_x, val_y))
    for result, x, y in ((backend.evaluate(7, "train"), train_x, train_y), (backend.evaluate(7), val_x, val_y)):
        logits = backend.logits(x).astype(np.float64)
        losses = np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1)) + logits.max(1) - logits[np.arange(len(y)), y]
        assert result.predictions.tolist() == logits.argmax(1).tolist()
        assert result.loss_sum == pytest.approx(losses.sum(), rel=1e-5)


def test_each_step_shape_compiles_once(framework):
    """A compiled step is compiled once per batch shape: 16 examples in batches of 6 are two shapes (6 and the
    last 4), and three epochs with an lr that moves every step, then two more built again in the same process,
    compile nothing more. An eager framework says so (None), as torch and Paddle do."""
    eager = framework in ("torch", "paddle", "keras-torch")
    for _ in range(2):  # a worker's next run builds its own model: its step compiles as the first one's did
        backend, _ = built(framework, optimizer=optimizer_params({"name": "sgd", "momentum": 0.9}))
        for epoch in range(3):
            backend.train_steps(np.random.default_rng(epoch).permutation(16), 6, np.array([0.1, 0.05, 0.02]))
            backend.evaluate(5)
        assert backend.compilations() == (None if eager else 2)


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
@pytest.mark.parametrize("model", ["lenet", "mlp"])
def test_weights_load_and_read_back_exactly(framework, model, shape):
    weights_round_trip(framework, model, shape)


@pytest.mark.parametrize("optimizer", OPTIMIZER_CASES, ids=lambda o: "-".join(f"{v}" for v in o.values()))
def test_every_optimizer_steps_as_its_reference_formula(framework, optimizer):
    """Three steps at three lrs (so that a momentum form or a buffer holding the lr would show), in float64: each
    parameter equals bench/optimizers.py's reference update, with the departures the adapter names, to 1e-6.
    An optimizer or form the framework refuses is refused before a run, and has no builder to check.
    The hyperparameters are those float32 holds exactly (0.9 as 0.899999976...): TensorFlow makes a Python float a
    float32 constant before it casts, so Keras's Adam computes its bias corrections from float32 betas even in a
    float64 run (5e-6 off after three steps); that is a rounding, not a formula, and float32 runs share it."""
    p = {k: float(np.float32(v)) if isinstance(v, float) else v for k, v in optimizer_params(optimizer).items()}
    adapter, refusal = load_adapter(framework), REGISTRY[framework].refusal(Asks(p))
    if refusal:
        assert refusal.startswith("momentum_form") or p["name"] not in adapter.OPTIMIZER_BUILDERS
        return
    departures = adapter.OPTIMIZER_DEPARTURES.get(p["name"], ())
    assert set(departures) <= set(DEPARTURES), f"{framework} names a departure bench/optimizers.py does not know"
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(24, 1, 8, 8)), rng.integers(0, 10, 24)
    lrs = np.array([1.0, 0.5, 2.0]) * (0.05 if p["name"] == "sgd" else 0.005)
    backend, weights = built(framework, optimizer=p, lr=lrs[0], data=(x, y, x, y), dtype="float64")
    backend.train_steps(np.arange(24), 8, lrs)
    expected, states = dict(weights), {name: {} for name in weights}
    # a framework that refuses float64 computes in float32 somewhere: its own gradient is the reference's, so that
    # only the optimizer's formula is compared (the others' gradients are numpy's to 1e-12, as their logits are)
    own = REGISTRY[framework].refusal(Asks(p, dtype="float64"))
    for step, lr in enumerate(lrs):
        batch = x[step * 8:step * 8 + 8], y[step * 8:step * 8 + 8]
        grads = gradients(framework, expected, *batch) if own else mlp_gradients(expected, *batch)
        expected = {n: reference_update(p, states[n], w, grads[n], lr, departures) for n, w in expected.items()}
    got = backend.weights()
    assert max(float(np.abs(expected[n] - weights[n]).max()) for n in weights) > 1e-3  # the steps moved the weights
    for name in weights:
        np.testing.assert_allclose(got[name], expected[name], rtol=0, atol=1e-6, err_msg=name)


def gradients(framework, weights: dict, x: np.ndarray, y: np.ndarray) -> dict:
    """The framework's own gradient of the MLP's mean cross-entropy on one batch at ``weights``: one plain SGD step
    at lr 1 (float64). ``test_the_gradient_is_the_cross_entropys`` checks it against numpy's."""
    sgd = optimizer_params({"name": "sgd"})
    backend, _ = built(framework, optimizer=sgd, lr=1.0, data=(x, y, x, y), weights=weights)
    backend.train_steps(np.arange(len(x)), len(x), None)
    return {n: weights[n] - w for n, w in backend.weights().items()}


def test_the_gradient_is_the_cross_entropys(framework):
    """The gradient the check above feeds the reference: a numpy backward pass of the MLP's mean cross-entropy."""
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(8, 1, 8, 8)), rng.integers(0, 10, 8)
    _, weights = built(framework, dtype="float64")
    got, expected = gradients(framework, weights, x, y), mlp_gradients(weights, x, y)
    assert max(float(np.abs(g).max()) for g in expected.values()) > 1e-2
    for name in weights:
        np.testing.assert_allclose(got[name], expected[name], rtol=0, atol=1e-7, err_msg=name)


@dataclass
class Asks:
    """What a run asks of a framework's capabilities (backends/__init__.py ``Framework.refusal``)."""

    optimizer: dict
    schedule: dict = field(default_factory=lambda: {"name": "constant"})
    dtype: str = "float32"


def test_the_reference_check_fails_an_optimizer_built_another_way(framework, monkeypatch):
    """The check above can fail: Adam built with another beta1 than the declared one."""
    adapter = load_adapter(framework)
    build = adapter.OPTIMIZER_BUILDERS["adam"]
    monkeypatch.setitem(adapter.OPTIMIZER_BUILDERS, "adam", lambda params, p, lr: build(params, {**p, "beta1": 0.5}, lr))
    with pytest.raises(AssertionError):
        test_every_optimizer_steps_as_its_reference_formula(framework, {"name": "adam"})


LAYOUT_SHAPES = [("lenet", (c, side, side)) for side in (28, 32, 64) for c in (1, 3)] + [("mlp", (3, 64, 64))]


@pytest.mark.parametrize("model,shape", LAYOUT_SHAPES, ids=[f"{m}-{c}x{h}x{w}" for m, (c, h, w) in LAYOUT_SHAPES])
def test_the_layout_gives_the_logits_of_the_canonical_model(framework, model, shape):
    """The adapter's model, built from the canonical weights, against the same model in numpy: every layout
    conversion (kernels, dense, flatten order) and every input shape, SIGNS' 64x64x3 included (Keras once guessed
    its input side from the padding)."""
    backend, w = built(framework, model, shape, seed=4, data=(np.zeros((4, *shape), np.float32), np.zeros(4, np.int64)) * 2)
    x = np.random.default_rng(1).normal(size=(3, *shape)).astype(np.float32)
    expected = lenet_logits(w, x, architecture(model, shape, 10).conv1_padding) if model == "lenet" else mlp_logits(w, x)
    np.testing.assert_allclose(backend.logits(x), expected, rtol=1e-4, atol=1e-5)


def test_a_float64_run_computes_in_float64_unless_refused(framework):
    """float64 separates a framework's math from its float32 rounding, so a float64 model's logits equal numpy's
    to 1e-12; a framework that refuses float64 does not (were it fixed, its refusal would go)."""
    x = np.random.default_rng(1).normal(size=(3, 1, 8, 8))
    backend, w = built(framework, dtype="float64", data=(x, np.zeros(3, np.int64)) * 2)
    error = float(np.abs(backend.logits(x) - mlp_logits(w, x)).max())
    refused = REGISTRY[framework].refusal(Asks({"name": "sgd", "momentum_form": "torch"}, dtype="float64"))
    assert (error > 1e-12) == bool(refused), f"{framework}: float64 logits {error:.1e} off numpy's; refusal: {refused}"


def test_a_workers_later_runs_give_the_rows_of_a_process_of_their_own(framework, capfd):
    """One worker trains a LeNet, an MLP with Adam on a schedule, then the first LeNet again (under another study
    name): the LeNet's rows equal those of its first run, the worker's first, and the MLP's those of a process of
    its own (nothing of an earlier run leaks into a later one). The workers tell each epoch to the driver and print
    nothing on its terminal: what the framework printed comes back with each run, for its log file."""
    base = dict(study="worker", framework=framework, dataset="digits", batch_size=32, epochs=2, seed=0, device="cpu",
                train_size=256, val_size=128, optimizer=optimizer_params({"name": "sgd", "momentum": 0.9}),
                schedule={"name": "constant"}, lr=0.05, log_every=2)
    lenet = RunSpec(**{**base, "model": "lenet"})
    mlp = RunSpec(**{**base, "model": "mlp", "optimizer": optimizer_params({"name": "adam"}), "lr": 0.01,
                     "schedule": {"name": "step", "step_size": 1, "gamma": 0.5}})

    def rows(specs, fresh):
        epochs = []
        outcomes = list(run_local(groups(specs), threads=1, fresh=fresh, on_epoch=epochs.append))
        assert [o.manifest["status"] for o in outcomes] == ["done"] * len(specs), [o.manifest["error"] for o in outcomes]
        assert [(e.run_id, e.epoch) for e in epochs] == [(s.run_id, k) for s in specs for k in (1, 2)]
        assert capfd.readouterr() == ("", ""), "a worker wrote on the driver's terminal"
        if framework == "keras":  # TensorFlow's absl lines, which no setting silences: in the first run's log
            assert "absl" in outcomes[0].log, "TensorFlow printed nothing: is its output still captured?"
        assert [o.manifest["process_run"] for o in outcomes] == ([1] * len(specs) if fresh else [1, 2, 3])
        return [pd.DataFrame(o.rows, columns=COLUMNS).pipe(lambda df: df[~df["metric"].isin(TIMING_METRICS)])
                .drop(columns=["run_id", "study"]).reset_index(drop=True) for o in outcomes]

    first, in_turn, again = rows([lenet, mlp, dataclasses.replace(lenet, study="worker-again")], fresh=False)
    (alone,) = rows([mlp], fresh=True)
    pd.testing.assert_frame_equal(again, first)
    pd.testing.assert_frame_equal(in_turn, alone)


def test_perf_baselines_time_lenet_epochs(framework):
    """`bench perf`'s hand-written loops run in every framework (on 128 digits, as MNIST-shaped images)."""
    data = load_dataset("digits", train_size=128, val_size=100)
    assert data.train_x.shape[1:] == (1, 28, 28)
    baselines = load_baselines(framework)
    assert "hand" in baselines
    for way, loop in baselines.items():
        seconds = loop(data.train_x, data.train_y, 2, "cpu")
        assert len(seconds) == 2 and all(s > 0 for s in seconds), way


def test_registries_cover_the_declarations(framework):
    """Every declared optimizer has a builder or a refusal (backends/__init__.py ``Framework.refuses``), never both;
    a framework's native schedules are declared ones (the rest run from the reference, and the manifest says which)."""
    adapter, refused = load_adapter(framework), dict(REGISTRY[framework].refuses)
    refused_optimizers = {what.split()[1] for what in refused if what.startswith("optimizer ")}
    assert set(adapter.OPTIMIZER_BUILDERS) | refused_optimizers == set(DECLARED)
    assert not set(adapter.OPTIMIZER_BUILDERS) & refused_optimizers
    assert set(adapter.NATIVE.builders) <= set(SCHEDULES)
    assert not {what.split()[1] for what in refused if what.startswith("schedule ")} & set(adapter.NATIVE.builders)
    spec = RunSpec(study="t", framework=framework, model="mlp", dataset="digits", optimizer=optimizer_params({"name": "sgd"}),
                   schedule={"name": "inverse_sqrt"}, lr=0.1, batch_size=64, epochs=1, seed=0, device="cpu",
                   train_size=128, val_size=64)
    source = train(spec, threads=1).manifest["schedule_source"]
    assert source == ("native" if "inverse_sqrt" in adapter.NATIVE.builders else "reference")


def object_name(obj) -> str:
    """The framework's object a native schedule is, with what it wraps (torch's SequentialLR, Paddle's
    LinearWarmup); an object of lrbench's own is marked so. A schedule that is a function (Optax's) is named
    by the function that made it, wrapping the functions it closes over (join_schedules' schedules)."""
    if inspect.isfunction(obj):
        cells = [c.cell_contents for c in obj.__closure__ or () if c != types.CellType()]  # an empty cell: unbound
        wrapped = [f for c in cells for f in (c if isinstance(c, list | tuple) else [c]) if inspect.isfunction(f)]
        name = obj.__qualname__.split(".<locals>")[0]
        module = obj.__module__
    else:
        wrapped = getattr(obj, "_schedulers", None) or [
            w for w in (getattr(obj, "inner", None), getattr(obj, "learning_rate", None), getattr(obj, "schedule", None))
            if w is not None and not isinstance(w, numbers.Number)]
        name, module = type(obj).__name__, type(obj).__module__
    name = ("lrbench's " if module.startswith("backends") else "") + name
    names = [object_name(w) for w in wrapped]
    inner = [n if names.count(n) == 1 else f"{n} x {names.count(n)}" for n in dict.fromkeys(names)]
    return f"{name}({', '.join(inner)})" if wrapped else name


def schedule_objects(framework) -> dict[str, str | None]:
    """Each declared schedule, built as a run builds it (on the parameters of its first test case): the name of
    the framework's object that computes it, or None where the reference does (as the manifest says)."""
    cases = {**SCHEDULE_CASES, **STEP_CASES}
    objects = {}
    for name in SCHEDULES:
        params = cases[min((c for c in cases if schedule_name(c) == name), key=len)]
        control = LrControl({"name": name, **Schedule(name, 0.3, params).params}, 0.3, 2, load_adapter(framework).NATIVE)
        objects[name] = object_name(control.object) if control.source == "native" else None
    return objects


def native_column(framework) -> str:
    """This framework's objects in docs/frameworks.md's table, as its backend builds its schedules."""
    return "; ".join(f"{n}: {o}" for n, o in schedule_objects(framework).items() if o) or "-"


def test_the_native_schedules_are_those_docs_frameworks_md_declares(framework):
    """docs/frameworks.md declares which schedules each framework runs with its own scheduler. Deleting an
    adapter's native entry once passed every test (the schedule fell back to the reference silently); now its
    row differs. `BENCH_UPDATE_DOCS=1` rewrites this framework's objects (tests/native_table.py: the core env
    writes the reference column)."""
    column, rows = native_column(framework), native_table.read()
    if os.environ.get("BENCH_UPDATE_DOCS") == "1":
        rows[framework] = [column, native_table.reference_column(column, SCHEDULES)]
        native_table.write(rows)
        return
    assert rows.get(framework, [None])[0] == column, "docs/frameworks.md's native schedules differ: BENCH_UPDATE_DOCS=1"


def test_a_deleted_native_entry_fails_the_table_check(framework, monkeypatch):
    """The check above can fail: without its exponential entry, an adapter's row no longer names exponential."""
    monkeypatch.delitem(load_adapter(framework).NATIVE.builders, "exponential")
    column = native_column(framework)
    assert "exponential" not in native_table.native_names(column) and native_table.read()[framework][0] != column


def test_importing_the_framework_shows_no_warning(framework):
    """A framework's import-time warnings (Paddle's "No ccache found") are about its build, not the run: with
    warnings as errors, loading the adapter in a fresh process still succeeds."""
    code = f"from backends import load_adapter; load_adapter({framework!r})"
    proc = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr[-2000:]
