"""Checks every backend must pass: the helpers of tests/frameworks/test_contract.py, numpy models among them."""

import numpy as np

from backends import load_adapter, load_backend
from bench.init import initial_weights
from bench.lr_control import LrControl
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


def built(framework, model="mlp", shape=(1, 8, 8), optimizer=None, lr=0.1, seed=0, data=None, dtype="float32",
          weights=None):
    """A backend with a model built from ``weights`` (default: the canonical weights of ``seed``, in ``dtype``),
    and those weights."""
    arch = architecture(model, shape, 10)
    weights = weights or {k: v.astype(dtype) for k, v in initial_weights(arch, seed).items()}
    backend = load_backend(framework)
    backend.setup("cpu", 1, seed)
    if data is None:
        rng = np.random.default_rng(0)
        x = rng.normal(size=(16, *shape)).astype(np.float32)
        y = rng.integers(0, 10, 16)
        data = (x, y, x, y)
    backend.set_data(*data)
    backend.build(arch, weights, optimizer or optimizer_params({"name": "sgd"}), lr)
    return backend, weights


class Scheduled:
    """A backend driven through a schedule as the runner drives it (bench/runner.py): the core's ``LrControl``
    over the adapter's ``NATIVE`` gives each lr, the backend sets it and says what its optimizer holds."""

    def __init__(self, framework, schedule: dict, lr: float, steps_per_epoch: int = STEPS_PER_EPOCH, data=None):
        self.control = LrControl(schedule, lr, steps_per_epoch, load_adapter(framework).NATIVE)
        self.backend, _ = built(framework, lr=self.control.lr(), data=data)
        self.held = self.backend.set_lr(self.control.lr())
        self.steps_per_epoch = steps_per_epoch

    def epoch(self, order: np.ndarray, batch_size: int, val_loss: float = 1.0):
        """One epoch's steps, then the schedule's epoch: (the lr held as the epoch began, its steps' lrs or None)."""
        first = self.held
        result = self.backend.train_steps(order, batch_size, self.control.epoch_plan(-(-len(order) // batch_size)))
        self.held = self.backend.set_lr(self.control.epoch_done(val_loss))
        return first, result.batch_lrs


def applied_lrs(framework, case):
    """The lr the framework applied in each epoch, training for real, and the reference's."""
    name = schedule_name(case)
    reference = Schedule(name, BASE_LR, SCHEDULE_CASES[case])
    run = Scheduled(framework, {"name": name, **reference.params}, BASE_LR)
    order = np.random.default_rng(1)
    applied, expected = [], []
    for epoch in range(EPOCHS):
        applied.append(run.epoch(order.permutation(16), 16 // STEPS_PER_EPOCH, VAL_LOSSES[epoch])[0])
        expected.append(reference.lr(epoch))
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
    run = Scheduled(framework, {"name": name, **reference.params}, BASE_LR, steps, data=(x, y, x, y))
    applied, first_of_epoch = [], []
    for _ in range(STEP_EPOCHS):
        first, lrs = run.epoch(rng.permutation(len(x)), batch)
        first_of_epoch.append(first)
        applied.extend(lrs)
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


def mlp_logits(w: dict, x: np.ndarray) -> np.ndarray:
    """The MLP's forward pass in numpy float64 from the canonical weights."""
    h = x.reshape(len(x), -1).astype(np.float64)
    for k in (1, 2):
        h = np.maximum(h @ w[f"fc{k}.weight"].T + w[f"fc{k}.bias"], 0)
    return h @ w["fc3.weight"].T + w["fc3.bias"]


def mlp_gradients(w: dict, x: np.ndarray, y: np.ndarray) -> dict:
    """The MLP's mean cross-entropy gradients on a batch, in numpy float64 (canonical layout)."""
    h0 = x.reshape(len(x), -1)
    h1 = np.maximum(h0 @ w["fc1.weight"].T + w["fc1.bias"], 0)
    h2 = np.maximum(h1 @ w["fc2.weight"].T + w["fc2.bias"], 0)
    z = h2 @ w["fc3.weight"].T + w["fc3.bias"]
    dz = np.exp(z - z.max(1, keepdims=True))
    dz = dz / dz.sum(1, keepdims=True)
    dz[np.arange(len(y)), y] -= 1
    dz /= len(y)
    grads, delta = {}, dz
    for k, below in ((3, h2), (2, h1), (1, h0)):
        grads[f"fc{k}.weight"], grads[f"fc{k}.bias"] = delta.T @ below, delta.sum(0)
        if k > 1:
            delta = (delta @ w[f"fc{k}.weight"]) * (below > 0)
    return grads


def lenet_logits(w: dict, x: np.ndarray, padding: int) -> np.ndarray:
    """LeNet's forward pass in numpy float64 from the canonical weights (OIHW kernels, (out, in) dense, NCHW flatten)."""
    def conv(a, kernel, bias, pad):
        a = np.pad(a, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        windows = np.lib.stride_tricks.sliding_window_view(a, kernel.shape[2:], axis=(2, 3))  # N, C, H, W, kh, kw
        return np.einsum("nchwij,ocij->nohw", windows, kernel) + bias[None, :, None, None]

    def pool(a):
        n, c, h, w_ = a.shape
        return a[:, :, :h // 2 * 2, :w_ // 2 * 2].reshape(n, c, h // 2, 2, w_ // 2, 2).max(axis=(3, 5))

    a = pool(np.maximum(conv(x.astype(np.float64), w["conv1.weight"], w["conv1.bias"], padding), 0))
    return mlp_logits(w, pool(np.maximum(conv(a, w["conv2.weight"], w["conv2.bias"], 0), 0)))
