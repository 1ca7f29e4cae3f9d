"""JAX: Flax (linen) modules, Optax optimizers and Optax schedules, one jitted step per run.

Flax's linen, not nnx: a linen model is a pure function of its parameters
(``model.apply(params, x)``), so the training step is one ``jax.jit`` over (parameters,
optimizer state, batch) with no graph to split and merge, and the fused sweep vmaps the
same function over stacked parameters. The data sits on the device in channels-last
layout (Flax's convolutions are NHWC); each step gathers its batch by index there, and
losses come to the host once per epoch.

Pinned against Optax's defaults, so the math is that of the other backends:
- SGD momentum in PyTorch's form (``optax.sgd``: v = m*v + g; p -= lr*v, nesterov as
  torch's); ``momentum_form = "keras"`` puts lr inside the velocity (``scale_by_learning_rate``
  before ``trace``: v = m*v - lr*g; p += v), as Keras's SGD.
- Adam: ``eps`` 1e-8 (Optax's default too) added outside the square root, ``eps_root`` 0:
  PyTorch's update.
- Adagrad: the declared initial accumulator (0; Optax's default 0.1) and eps 1e-10 (Optax's
  1e-7); Optax adds eps inside the square root, PyTorch outside (as Keras).
- RMSprop: ``eps_in_sqrt=False`` (PyTorch's placement; Optax's default is inside), initial
  scale 0; with momentum Optax keeps lr inside the momentum buffer (as Paddle), which is
  PyTorch's update at a constant lr.
- Weight decay as PyTorch couples it: ``add_decayed_weights`` before the optimizer.
- The lr is a hyperparameter of the optimizer's state (``inject_hyperparams``), held in the
  model's dtype, as torch's float32 step applies it; the rows record that value.
Schedules are Optax schedule functions read on the host at each epoch (per-step ones at
each step), counting optimizer steps as Optax does: an epoch schedule's lengths are its
epochs times the run's steps per epoch, and it is read at epoch x steps per epoch.
Threads: see ``_start``.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from bench.layout import CHANNELS_LAST, from_layout, to_layout
from bench.schedules import one_cycle_phases, range_factor

from .base import EpochResult, EvalResult, NativeSchedules, resolve_device

jax.config.update("jax_enable_x64", True)  # float64 runs and schedules; every array below states its dtype

_POOL: list[int] = []  # the threads XLA's CPU pool started with in this process (one entry once started)


def _start(threads: int) -> int:
    """Start XLA's CPU client with a pool of ``threads``: XLA sizes its pool from the cores the process may run
    on when the client starts, and fixes it for the life of the process. So the process is narrowed to
    ``threads`` cores while it starts, and all of them are given back after, to every thread: the pool's
    threads, born narrowed, would otherwise stay on the first cores, with every other run's. Returns the
    pool's size (a later run in the same process gets the first one's)."""
    if not _POOL:
        cores = os.sched_getaffinity(0)
        os.sched_setaffinity(0, sorted(cores)[:threads])
        try:
            jax.devices()
        finally:
            for thread in os.listdir("/proc/self/task"):
                os.sched_setaffinity(int(thread), cores)
        _POOL.append(min(threads, len(cores)))
    return _POOL[0]


# ---------------------------------------------------------------- models


class LeNet(nn.Module):
    arch: object  # bench.models.Architecture

    @nn.compact
    def __call__(self, x):
        (c1, _, k1, _), (c2, _, k2, _) = self.arch.layers["conv1"], self.arch.layers["conv2"]
        pad = self.arch.conv1_padding
        x = nn.relu(nn.Conv(c1, (k1, k1), padding=((pad, pad), (pad, pad)), name="conv1")(x))
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = nn.relu(nn.Conv(c2, (k2, k2), padding="VALID", name="conv2")(x))
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
        return _dense(self.arch, x.reshape(x.shape[0], -1))


class MLP(nn.Module):
    arch: object

    @nn.compact
    def __call__(self, x):
        return _dense(self.arch, x)  # fed already flat, see Backend._layout


def _dense(arch, x):
    x = nn.relu(nn.Dense(arch.layers["fc1"][0], name="fc1")(x))
    x = nn.relu(nn.Dense(arch.layers["fc2"][0], name="fc2")(x))
    return nn.Dense(arch.layers["fc3"][0], name="fc3")(x)


MODELS = {"lenet": LeNet, "mlp": MLP}
_FLAX_NAMES = {"weight": "kernel", "bias": "bias"}


def to_params(weights: dict[str, np.ndarray], arch) -> dict:
    """Canonical weights as Flax's parameter tree: {layer: {"kernel", "bias"}}, channels-last."""
    params: dict = {}
    for name, w in to_layout(weights, arch, CHANNELS_LAST).items():
        layer, kind = name.split(".")
        params.setdefault(layer, {})[_FLAX_NAMES[kind]] = jnp.asarray(w)
    return {"params": params}


def from_params(params: dict, arch) -> dict[str, np.ndarray]:
    flat = {f"{layer}.{kind}": np.asarray(params["params"][layer][flax])
            for layer in arch.layers for kind, flax in _FLAX_NAMES.items()}
    return from_layout(flat, arch, CHANNELS_LAST)


# ---------------------------------------------------------------- optimizers


def _sgd(learning_rate, p):
    if p["momentum_form"] == "keras":  # lr inside the velocity: v = m*v - lr*g; p += v
        return optax.chain(optax.scale_by_learning_rate(learning_rate),
                           optax.trace(decay=p["momentum"], nesterov=p["nesterov"]))
    return optax.sgd(learning_rate, momentum=p["momentum"] or None, nesterov=p["nesterov"])


def _optimizer(optax_optimizer):
    """An OptimizerBuilder (backends/base.py) from ``optax_optimizer(learning_rate, p)``: Optax's optimizer behind
    coupled weight decay, its lr a hyperparameter of its state (set by ``set_lr``), in the parameters' dtype."""
    def build(params, p, lr):
        def make(learning_rate):
            inner = optax_optimizer(learning_rate, p)
            return optax.chain(optax.add_decayed_weights(p["weight_decay"]), inner) if p["weight_decay"] else inner

        dtype = jax.tree.leaves(params)[0].dtype
        return optax.inject_hyperparams(make, hyperparam_dtype=dtype)(learning_rate=lr)

    return build


# name -> OptimizerBuilder (backends/base.py): one per optimizer the core declares (bench/optimizers.py), but those it
# refuses; each an Optax optimizer of (learning_rate, p) under ``_optimizer``.
OPTIMIZER_BUILDERS = {
    "sgd": _optimizer(_sgd),
    "adagrad": _optimizer(lambda learning_rate, p: optax.adagrad(
        learning_rate, initial_accumulator_value=p["initial_accumulator_value"], eps=p["eps"])),
    "adam": _optimizer(lambda learning_rate, p: optax.adam(learning_rate, b1=p["beta1"], b2=p["beta2"], eps=p["eps"],
                                                           eps_root=0.0)),
    "rmsprop": _optimizer(lambda learning_rate, p: optax.rmsprop(
        learning_rate, decay=p["rho"], eps=p["eps"], initial_scale=0.0, eps_in_sqrt=False, centered=p["centered"],
        momentum=p["momentum"] or None)),
}
# Where Optax's formula departs from the reference (bench/optimizers.py DEPARTURES), as the module docstring says.
OPTIMIZER_DEPARTURES = {"adagrad": ("eps_in_sqrt",), "rmsprop": ("lr_in_momentum",)}


# ---------------------------------------------------------------- schedules


@dataclass(frozen=True)
class Counted:
    """An Optax schedule (a function of the optimizer step) and the steps one count of its reader spans:
    the run's steps per epoch for an epoch schedule, 1 for a per-step one. Read compiled, in float64."""

    schedule: object
    steps: int = 1

    def __post_init__(self):
        object.__setattr__(self, "compiled", jax.jit(self.schedule))

    def __call__(self, count: int) -> float:
        return float(self.compiled(count * self.steps))


def _per_epoch(build):
    """An epoch schedule's builder in optimizer steps: ``build(p, lr, steps_per_epoch)``."""
    return lambda p, lr: Counted(build(p, lr, p["steps_per_epoch"]), p["steps_per_epoch"])


def _per_step(build):
    return lambda p, lr: Counted(build(p, lr))


def _multistep(p, lr, spe):
    """A milestone given twice decays twice (torch's MultiStepLR counts them)."""
    return optax.piecewise_constant_schedule(lr, {m * spe: p["gamma"] ** n for m, n in Counter(p["milestones"]).items()})


def _periodic(schedule, period: int):
    """A cycle of Optax schedules, repeated: Optax has the cycle (``join_schedules``), not the repetition."""
    return lambda count: schedule(count % period)


def _cosine_restarts(p, lr, spe):
    """SGDR: Optax's cosine over each cycle, the cycles joined (t_mult 1: one cycle, repeated)."""
    cycle = p["t_0"] * spe
    cosine = partial(optax.cosine_decay_schedule, lr, alpha=p["eta_min"] / lr)
    if p["t_mult"] == 1:
        return _periodic(cosine(cycle), cycle)
    lengths = [cycle * p["t_mult"] ** k for k in range(64) if cycle * p["t_mult"] ** k < 2**40]
    return optax.join_schedules([cosine(n) for n in lengths], list(np.cumsum(lengths)[:-1]))


def _one_cycle(p, lr):
    """torch's phases (bench/schedules.py one_cycle_phases) as Optax's piecewise interpolation between them."""
    phases = one_cycle_phases(lr, p["cycle_epochs"] * p["steps_per_epoch"], p["pct_start"], p["div_factor"],
                              p["final_div_factor"], p["three_phase"])
    values = [phases[0][1]] + [end_lr for _, _, end_lr in phases]
    scales = {end: values[i + 1] / values[i] for i, (end, _, _) in enumerate(phases)}
    return optax.piecewise_interpolate_schedule({"cos": "cosine", "linear": "linear"}[p["anneal"]], values[0], scales)


def _cyclic(p, lr):
    """Smith's triangle from Optax's linear schedules, joined and repeated; its height halves each cycle
    (triangular2) or decays by gamma per step (exp_range)."""
    up, down, low, mode = p["step_size_up"], p.get("step_size_down") or p["step_size_up"], p["min_lr"], p["mode"]
    triangle = _periodic(optax.join_schedules([optax.linear_schedule(low, lr, up), optax.linear_schedule(lr, low, down)],
                                              [up]), up + down)

    def cyclic(count):
        height = triangle(count) - low
        if mode == "triangular2":
            height = height * 0.5 ** (count // (up + down))
        elif mode == "exp_range":
            height = height * p["gamma"] ** count
        return low + height

    return cyclic


# The schedules Optax computes (backends/base.py NativeSchedules), each an Optax schedule function read at
# the optimizer step it is asked for; inverse_sqrt (Optax has none) and reduce-on-plateau (Optax's is a
# gradient transformation scaling the updates, with its own thresholds) run from the reference.
NATIVE = NativeSchedules(builders={
    "constant": _per_epoch(lambda p, lr, spe: optax.constant_schedule(lr)),
    "step": _per_epoch(lambda p, lr, spe: optax.exponential_decay(lr, transition_steps=p["step_size"] * spe,
                                                                  decay_rate=p["gamma"], staircase=True)),
    "multistep": _per_epoch(_multistep),
    "exponential": _per_epoch(lambda p, lr, spe: optax.exponential_decay(lr, transition_steps=spe, decay_rate=p["gamma"],
                                                                         staircase=True)),
    # alpha is a fraction of the initial lr; Optax holds it past decay_steps
    "cosine": _per_epoch(lambda p, lr, spe: optax.cosine_decay_schedule(lr, p["t_max"] * spe, alpha=p["eta_min"] / lr)),
    # decay_steps counts the warm-up too
    "warmup_cosine": _per_epoch(lambda p, lr, spe: optax.warmup_cosine_decay_schedule(
        p["warmup_start_lr"], lr, warmup_steps=p["warmup_epochs"] * spe, decay_steps=p["t_max"] * spe,
        end_value=p["eta_min"])),
    "cosine_restarts": _per_epoch(_cosine_restarts),
    "polynomial": _per_epoch(lambda p, lr, spe: optax.polynomial_schedule(lr, 0.0, p["power"], p["t_max"] * spe)),
    "one_cycle": _per_step(_one_cycle),
    "cyclic": _per_step(_cyclic),
    "cosine_per_step": _per_step(lambda p, lr: optax.cosine_decay_schedule(lr, p["t_max"], alpha=p["eta_min"] / lr)),
    "range_test": _per_step(lambda p, lr: optax.exponential_decay(
        p["min_lr"], transition_steps=1, decay_rate=range_factor(lr, p["min_lr"], p["steps"]))),
}, read=lambda counted, count: counted(count), advance=lambda counted, val_loss: None)


# ---------------------------------------------------------------- the step


def _loss(logits, y):
    return optax.softmax_cross_entropy_with_integer_labels(logits, y)


def make_step(model, tx):
    """One optimizer step on the batch ``idx`` of the device-resident data: (params, state, loss, correct)."""
    def step(params, state, x_all, y_all, idx):
        x, y = x_all[idx], y_all[idx]

        def loss_fn(params):
            logits = model.apply(params, x)
            return _loss(logits, y).mean(), logits

        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss, jnp.sum(jnp.argmax(logits, 1) == y)

    return step


def one_by_one(step, k: int):
    """The stacked members' own steps, one call each per batch, updating the stacks in place.

    On a CPU, vmapping LeNet turns its second convolution into a grouped one, slower there
    than the members' convolutions one by one, and so is unrolling the members inside one
    compiled step (docs/performance.md). Each member then computes exactly what its run alone
    does, and the fused run saves the fixed costs: process, import, data, compilation.
    """
    def member_step(params, state, x_all, y_all, idx, i):
        mine = jax.tree.map(lambda a: jax.lax.dynamic_index_in_dim(a, i, keepdims=False), (params, state))
        params_i, state_i, loss, right = step(*mine, x_all, y_all, idx)
        put = partial(jax.lax.dynamic_update_index_in_dim, index=i, axis=0)
        return jax.tree.map(put, params, params_i), jax.tree.map(put, state, state_i), loss, right

    member_step = jax.jit(member_step, donate_argnums=(0, 1))

    def fused(params, state, x_all, y_all, idx):
        losses, rights = [], []
        for i in range(k):
            params, state, loss, right = member_step(params, state, x_all, y_all, idx, np.int32(i))
            losses.append(loss)
            rights.append(right)
        return params, state, jnp.stack(losses), jnp.stack(rights)

    return fused


def make_forward(model):
    """Summed loss and predictions of a batch in eval mode (the models have no train-only layers)."""
    def forward(params, x, y):
        logits = model.apply(params, x)
        return jnp.sum(_loss(logits, y).astype(jnp.float64)), jnp.argmax(logits, 1)

    return forward


def _evaluate(backend, params, batch_size: int, split: str) -> EvalResult:
    """A full pass of ``params`` over the backend's "val" or "train" arrays, in batches."""
    xs, ys = (backend.train_x, backend.train_y) if split == "train" else (backend.val_x, backend.val_y)
    sums, predictions = [], []
    for start in range(0, len(ys), batch_size):
        loss_sum, predicted = backend._forward(params, xs[start:start + batch_size], ys[start:start + batch_size])
        sums.append(loss_sum)
        predictions.append(predicted)
    return EvalResult(float(jnp.sum(jnp.stack(sums))), np.asarray(jnp.concatenate(predictions)))


# ---------------------------------------------------------------- the backend


class Backend:
    _numpy = None  # the data, until the model's layout is known (set_data, build)

    def version(self) -> str:
        import flax

        return f"{jax.__version__} (flax {flax.__version__}, optax {optax.__version__})"

    def setup(self, device: str, threads: int, seed: int) -> tuple[str, int]:
        used = _start(threads)
        gpus = [d for d in jax.devices() if d.platform == "gpu"]
        self.gpu = resolve_device(device, bool(gpus), "JAX") == "cuda"
        self.device = gpus[0] if self.gpu else jax.devices("cpu")[0]
        np.random.seed(seed)  # nothing here draws: the weights and the batch order come from the runner
        return (f"cuda ({self.device.device_kind})" if self.gpu else "cpu"), used

    def _put(self, a: np.ndarray):
        return jax.device_put(np.ascontiguousarray(a), self.device)

    def _put_tree(self, tree):
        """``tree`` committed to the run's device: the step's outputs are, and an input that is not
        (Optax's eager init) would make the step compile a second time on its second call."""
        return jax.device_put(tree, self.device)

    def _layout(self, x: np.ndarray) -> np.ndarray:
        """NCHW -> NHWC for LeNet; flat (C*H*W, canonical order) for the MLP."""
        return x.reshape(len(x), -1) if self.arch.model == "mlp" else x.transpose(0, 2, 3, 1)

    def set_data(self, train_x, train_y, val_x, val_y) -> None:
        self._numpy = (train_x, train_y, val_x, val_y)  # laid out once the model is known

    def build(self, arch, weights, optimizer, lr) -> None:
        self.arch, self.model = arch, MODELS[arch.model](arch)
        self.params = self._put_tree(to_params(weights, arch))
        self.tx = OPTIMIZER_BUILDERS[optimizer["name"]](self.params, optimizer, lr)
        self.state = self._put_tree(self.tx.init(self.params))
        self._step = jax.jit(make_step(self.model, self.tx), donate_argnums=(0, 1))
        self._forward = jax.jit(make_forward(self.model))
        self._lay_out_data()

    def _lay_out_data(self) -> None:
        """The arrays on the device in the model's layout, once: a warm-start chain builds again on the same data."""
        if self._numpy is not None:
            train_x, train_y, val_x, val_y = self._numpy
            self.train_x, self.val_x = self._put(self._layout(train_x)), self._put(self._layout(val_x))
            self.train_y, self.val_y = self._put(train_y.astype(np.int32)), self._put(val_y.astype(np.int32))
            self._numpy = None

    def set_lr(self, lr: float) -> float:
        """Set the lr of the next steps in the optimizer's state; the lr it now holds."""
        held = self.state.hyperparams["learning_rate"]
        self.state.hyperparams["learning_rate"] = jax.device_put(np.asarray(lr, held.dtype), self.device)
        return float(self.state.hyperparams["learning_rate"])

    def train_steps(self, order, batch_size, lrs) -> EpochResult:
        losses, correct = [], []
        held = None if lrs is None else np.empty(len(lrs))
        order = order.astype(np.int32)
        for i, start in enumerate(range(0, len(order), batch_size)):
            if lrs is not None:
                held[i] = self.set_lr(lrs[i])
            self.params, self.state, loss, right = self._step(self.params, self.state, self.train_x, self.train_y,
                                                              order[start:start + batch_size])
            losses.append(loss)
            correct.append(right)
        return EpochResult(np.asarray(jnp.stack(losses), dtype=np.float64), int(jnp.sum(jnp.stack(correct))), held)

    def evaluate(self, batch_size, split="val") -> EvalResult:
        return _evaluate(self, self.params, batch_size, split)

    def weights(self) -> dict[str, np.ndarray]:
        return from_params(self.params, self.arch)

    def logits(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.apply(self.params, self._put(self._layout(x))))

    def synchronize(self) -> None:
        jax.block_until_ready(self.params)

    def compilations(self) -> int:
        return self._step._cache_size()


class FusedBackend(Backend):
    """Several runs that differ only in lr or schedule, trained as one model (``--fused``).

    Each member's parameters and optimizer state are stacked on a leading axis, each member with
    its own lr in its optimizer state. ``jax.vmap`` maps the run's own step over them, sharing the
    batch: one compiled step updates every member as its run alone would, up to the order in which
    XLA sums the batched layers (float32 rounding; tests/frameworks/test_fused.py). On a CPU, LeNet
    steps its members one by one instead (``one_by_one``), exactly as they run alone.
    """

    def build(self, arch, weights, optimizer, lrs) -> None:
        self.arch, self.model = arch, MODELS[arch.model](arch)
        one = self._put_tree(to_params(weights, arch))
        self.params = jax.tree.map(lambda a: jnp.stack([a] * len(lrs)), one)
        self.tx = OPTIMIZER_BUILDERS[optimizer["name"]](one, optimizer, lrs[0])
        self.state = self._put_tree(jax.vmap(self.tx.init)(self.params))
        held = self.state.hyperparams["learning_rate"]
        self.state.hyperparams["learning_rate"] = jax.device_put(np.array(lrs, held.dtype), self.device)
        step = make_step(self.model, self.tx)
        vmapped = self.gpu or arch.model == "mlp"
        self._step = (jax.jit(jax.vmap(step, in_axes=(0, 0, None, None, None)), donate_argnums=(0, 1)) if vmapped
                      else one_by_one(step, len(lrs)))
        self._forward = jax.jit(make_forward(self.model))
        self._lay_out_data()

    def train_steps(self, order, batch_size) -> list[EpochResult]:
        losses, correct = [], []
        order = order.astype(np.int32)
        for start in range(0, len(order), batch_size):
            self.params, self.state, loss, right = self._step(self.params, self.state, self.train_x, self.train_y,
                                                              order[start:start + batch_size])
            losses.append(loss)
            correct.append(right)
        losses, correct = np.asarray(jnp.stack(losses, 1), dtype=np.float64), np.asarray(jnp.sum(jnp.stack(correct), 0))
        return [EpochResult(row, int(c)) for row, c in zip(losses, correct)]

    def set_lr(self, k: int, lr: float) -> float:
        lrs = self.state.hyperparams
        lrs["learning_rate"] = lrs["learning_rate"].at[k].set(lr)
        return float(lrs["learning_rate"][k])

    def _params(self, k: int):
        return jax.tree.map(lambda a: a[k], self.params)

    def evaluate(self, k, batch_size, split="val") -> EvalResult:
        return _evaluate(self, self._params(k), batch_size, split)

    def weights(self, k) -> dict[str, np.ndarray]:
        return from_params(self._params(k), self.arch)
