"""Checks every backend must pass: the helpers of tests/frameworks/test_contract.py and the parity logits worker."""

import numpy as np

from backends import load_backend
from bench.init import initial_weights
from bench.models import architecture
from bench.schedules import Schedule
from bench.spec import optimizer_params
from tests.cases import (
    BASE_LR,
    EPOCHS,
    SCHEDULE_CASES,
    STEP_CASES,
    STEP_EPOCHS,
    STEPS_PER_EPOCH_PER_STEP,
    VAL_LOSSES,
    WARMUP_CASES,
    schedule_name,
)

STEPS_PER_EPOCH = 2


def built(framework, model="mlp", shape=(1, 8, 8), optimizer=None, schedule=None, lr=0.1, seed=0, data=None):
    """A backend with a model built from the canonical weights of ``seed``, and those weights."""
    arch = architecture(model, shape, 10)
    weights = initial_weights(arch, seed)
    backend = load_backend(framework)
    backend.setup("cpu", 1, seed)
    if data is None:
        rng = np.random.default_rng(0)
        x = rng.normal(size=(16, *shape)).astype(np.float32)
        y = rng.integers(0, 10, 16)
        data = (x, y, x, y)
    backend.set_data(*data)
    backend.build(arch, weights, optimizer or optimizer_params({"name": "sgd"}), schedule or {"name": "constant"},
                  lr, STEPS_PER_EPOCH)
    return backend, weights


def applied_lrs(framework, case):
    """The lr the framework applied in each epoch, training for real, and the reference's."""
    name = schedule_name(case)
    reference = Schedule(name, BASE_LR, SCHEDULE_CASES[case])
    backend, _ = built(framework, schedule={"name": name, **reference.params}, lr=BASE_LR)
    order = np.random.default_rng(1)
    applied, expected = [], []
    for epoch in range(EPOCHS):
        applied.append(backend.applied_lr())
        expected.append(reference.lr(epoch))
        backend.train_epoch(order.permutation(16), 16 // STEPS_PER_EPOCH)
        backend.end_epoch(VAL_LOSSES[epoch])
        reference.observe(VAL_LOSSES[epoch])
    assert (len(set(np.round(expected, 12))) > 1) == (case != "constant")  # the case exercises the schedule
    return np.array(applied), np.array(expected)


def applied_step_lrs(framework, case):
    """The lr the framework applied at every step of a per-step schedule (or an epoch schedule behind a warm-up),
    training for real, and the reference's."""
    name = schedule_name(case)
    reference = Schedule(name, BASE_LR, {**STEP_CASES, **WARMUP_CASES}[case])
    steps, batch = STEPS_PER_EPOCH_PER_STEP, 4
    rng = np.random.default_rng(0)
    x = rng.normal(size=(steps * batch, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 10, len(x))
    arch = architecture("mlp", (1, 8, 8), 10)
    backend = load_backend(framework)
    backend.setup("cpu", 1, 0)
    backend.set_data(x, y, x, y)
    backend.build(arch, initial_weights(arch, 0), optimizer_params({"name": "sgd"}), {"name": name, **reference.params},
                  BASE_LR, steps)
    applied, first_of_epoch = [], []
    for _ in range(STEP_EPOCHS):
        first_of_epoch.append(backend.applied_lr())
        applied.extend(backend.train_epoch(rng.permutation(len(x)), batch).batch_lrs)
        backend.end_epoch(1.0)
    expected = [reference.lr_at(t, steps) for t in range(STEP_EPOCHS * steps)]
    assert first_of_epoch == [applied[e * steps] for e in range(STEP_EPOCHS)]  # the epoch row's lr is its first step's
    return np.array(applied), np.array(expected)


def weights_round_trip(framework, model, shape):
    """Loaded weights read back unchanged in the canonical layout; logits have the right shape."""
    backend, weights = built(framework, model, shape, data=(np.zeros((4, *shape), np.float32), np.zeros(4, np.int64)) * 2)
    back = backend.weights()
    assert list(back) == list(weights)
    for name in weights:
        np.testing.assert_array_equal(back[name], weights[name], err_msg=name)
    assert backend.logits(np.zeros((2, *shape), np.float32)).shape == (2, 10)


def mlp_logits_match_numpy(framework):
    backend, w = built(framework, "mlp", (1, 28, 28), seed=3,
                       data=(np.zeros((4, 1, 28, 28), np.float32), np.zeros(4, np.int64)) * 2)
    x = np.random.default_rng(0).normal(size=(5, 1, 28, 28)).astype(np.float32)
    h = np.maximum(x.reshape(5, -1) @ w["fc1.weight"].T + w["fc1.bias"], 0)
    h = np.maximum(h @ w["fc2.weight"].T + w["fc2.bias"], 0)
    np.testing.assert_allclose(backend.logits(x), h @ w["fc3.weight"].T + w["fc3.bias"], rtol=1e-5, atol=1e-5)
