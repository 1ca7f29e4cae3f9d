"""PaddlePaddle: dygraph nn.Layers, paddle.optimizer and paddle.optimizer.lr schedulers.

Data stays on the device; batch losses and correct counts accumulate there and come to
the host once per epoch. Pinned against Paddle's defaults so the math is PyTorch's:
- Momentum is already PyTorch's form (v = m*v + g; p -= lr*v); weight decay is coupled
  L2 (wd * p added to the gradient), as in PyTorch.
- Adam's epsilon is 1e-8 in both and Paddle scales it by sqrt(1 - beta2^t), which makes
  its update PyTorch's exactly.
- Adagrad's epsilon 1e-10 (Paddle: 1e-6); RMSProp's rho 0.99 and epsilon 1e-8 (Paddle:
  0.95 and 1e-6). Paddle adds RMSProp's epsilon inside the square root and keeps lr
  inside its momentum buffer, PyTorch neither.
- Cosine schedules are held at their floor after the horizon (Paddle's, like PyTorch's,
  climbs back); reduce-on-plateau with a cooldown follows the reference, because
  Paddle's skips the improvement check while cooling down and PyTorch's does not.
Dygraph, not ``paddle.jit.to_static``: measured here, LeNet, one MNIST epoch, batch 128, 1
thread: 15.6 s dygraph, 17.9 s with the model under to_static(full_graph=True).
Threads: see CPU_THREADS.
"""

from __future__ import annotations

import numpy as np
import paddle
import paddle.nn.functional as F
from paddle import nn
from paddle.optimizer import lr as lr_sched

from bench.layout import DENSE_IN_OUT, from_layout, to_layout
from bench.schedules import PER_STEP, Schedule, after_epoch, base_lr, lr_moves_per_step, range_factor, reference_schedule, warmup

from .base import EpochResult, EvalResult, resolve_device, schedule_source, weights_dtype

# Paddle's own default, kept because it is its fastest here: LeNet, one MNIST epoch, batch 128,
# 16.6 s on 1 thread and 25.4 s on 2 (torch: 5.7 s and 4.6 s). Every run gets the same thread
# budget; Paddle uses 1 of it on the CPU, and the manifest records the threads each run used.
CPU_THREADS = 1


def _linears(arch):
    return [nn.Linear(i, o) for o, i in (arch.layers[f"fc{k}"] for k in (1, 2, 3))]


class LeNet(nn.Layer):
    def __init__(self, arch):
        super().__init__()
        (c1, c, k1, _), (c2, _, k2, _) = arch.layers["conv1"], arch.layers["conv2"]
        self.conv1 = nn.Conv2D(c, c1, k1, padding=arch.conv1_padding)
        self.conv2 = nn.Conv2D(c1, c2, k2)
        self.fc1, self.fc2, self.fc3 = _linears(arch)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = paddle.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class MLP(nn.Layer):
    def __init__(self, arch):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = _linears(arch)

    def forward(self, x):
        x = paddle.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


MODELS = {"lenet": LeNet, "mlp": MLP}


class HoldFloor(lr_sched.LRScheduler):
    """Follows ``inner`` up to ``horizon`` epochs, then holds ``floor`` for good."""

    def __init__(self, inner: lr_sched.LRScheduler, horizon: int, floor: float):
        self.inner, self.horizon, self.floor = inner, horizon, floor
        super().__init__(learning_rate=inner.base_lr)

    def get_lr(self) -> float:
        if self.last_epoch >= self.horizon:
            return self.floor
        self.inner.step(self.last_epoch)
        return self.inner()


class AfterEpoch(lr_sched.LRScheduler):
    """``first`` in epoch 0, then ``inner`` one epoch late: a schedule called after each epoch.

    (Paddle's LinearWarmup over one epoch would do it, but it refuses a start equal to its end.)"""

    def __init__(self, inner, first: float):
        self.inner = inner
        super().__init__(learning_rate=first)

    def get_lr(self) -> float:
        if self.last_epoch == 0:
            return self.base_lr
        if not isinstance(self.inner, lr_sched.LRScheduler):
            return self.inner
        self.inner.step(self.last_epoch - 1)
        return self.inner()


class Warmup(lr_sched.LRScheduler):
    """An epoch scheduler (or a plain lr) times a warm-up factor, stepped after every batch.

    The factor is Paddle's LinearWarmup from the start factor up to 1, held at 1 after. Put in front
    of a scheduler, Paddle's LinearWarmup hands over to it counted in its own unit from the warm-up's
    end, with absolute start and end lrs: it cannot put a per-step warm-up before an epoch schedule.
    ``epoch_done`` takes the epoch scheduler's new lr after the backend stepped it."""

    def __init__(self, epochs, steps: int, start: float):
        self.epochs = epochs
        self.factor = lr_sched.LinearWarmup(1.0, warmup_steps=steps, start_lr=start, end_lr=1.0)
        super().__init__(learning_rate=1.0)

    def get_lr(self) -> float:
        self.factor.step(self.last_epoch)
        epoch_lr = self.epochs() if isinstance(self.epochs, lr_sched.LRScheduler) else self.epochs
        return epoch_lr * self.factor()

    def epoch_done(self) -> None:
        self.last_lr = self.get_lr()


class ReferencePlateau(lr_sched.LRScheduler):
    """Reduce-on-plateau with PyTorch's cooldown semantics, driven by the reference."""

    def __init__(self, lr: float, params: dict):
        self.reference = Schedule("plateau", lr, params)
        super().__init__(learning_rate=lr)

    def step(self, metrics=None, epoch=None):
        if metrics is not None:
            self.reference.observe(float(metrics))
        self.last_lr = self.reference.lr(0)


def _plateau(p, lr):
    """Paddle's ReduceOnPlateau; with a cooldown, the reference (Paddle's cooldown counts differently)."""
    if p["cooldown"]:
        return ReferencePlateau(lr, {k: v for k, v in p.items() if k != "name"})
    return lr_sched.ReduceOnPlateau(lr, mode="min", factor=p["factor"], patience=p["patience"],
                                    threshold=p["threshold"], threshold_mode="rel", cooldown=0, min_lr=p["min_lr"])


def _warmup_cosine(p, lr):
    w = p["warmup_epochs"]
    cosine = lr_sched.CosineAnnealingDecay(lr, T_max=p["t_max"] - w, eta_min=p["eta_min"])
    warm = lr_sched.LinearWarmup(cosine, warmup_steps=w, start_lr=p["warmup_start_lr"], end_lr=lr)
    return HoldFloor(warm, p["t_max"], p["eta_min"])


# name -> builder(p, lr) of a paddle.optimizer.lr scheduler (or the plain lr): the schedules Paddle has
# natively. Any other declared schedule is driven from the reference (a LambdaDecay over it).
NATIVE_SCHEDULES = {
    "constant": lambda p, lr: lr,
    "step": lambda p, lr: lr_sched.StepDecay(lr, step_size=p["step_size"], gamma=p["gamma"]),
    "multistep": lambda p, lr: lr_sched.MultiStepDecay(lr, milestones=list(p["milestones"]), gamma=p["gamma"]),
    "exponential": lambda p, lr: lr_sched.ExponentialDecay(lr, gamma=p["gamma"]),
    "cosine": lambda p, lr: HoldFloor(lr_sched.CosineAnnealingDecay(lr, T_max=p["t_max"], eta_min=p["eta_min"]),
                                      p["t_max"], p["eta_min"]),
    "warmup_cosine": _warmup_cosine,
    "cosine_restarts": lambda p, lr: lr_sched.CosineAnnealingWarmRestarts(lr, T_0=p["t_0"], T_mult=p["t_mult"],
                                                                          eta_min=p["eta_min"]),
    "polynomial": lambda p, lr: lr_sched.PolynomialDecay(lr, decay_steps=p["t_max"], end_lr=0.0, power=p["power"],
                                                         cycle=False),
    "plateau": _plateau,
    # per step, stepped after every batch. Paddle's one-cycle ends at an absolute end_learning_rate
    # (default 1e-4): pinned to torch's peak / div_factor / final_div_factor.
    "one_cycle": lambda p, lr: lr_sched.OneCycleLR(
        lr, total_steps=p["cycle_epochs"] * p["steps_per_epoch"], divide_factor=p["div_factor"],
        end_learning_rate=lr / p["div_factor"] / p["final_div_factor"], phase_pct=p["pct_start"],
        anneal_strategy=p["anneal"], three_phase=p["three_phase"]),
    "cyclic": lambda p, lr: lr_sched.CyclicLR(p["min_lr"], lr, step_size_up=p["step_size_up"],
                                              step_size_down=p.get("step_size_down"), mode=p["mode"], exp_gamma=p["gamma"]),
    "cosine_per_step": lambda p, lr: NATIVE_SCHEDULES["cosine"](p, lr),  # its t_max counted in steps
    "range_test": lambda p, lr: _range_test(p["min_lr"], range_factor(lr, p["min_lr"], p["steps"])),
}


def _range_test(min_lr: float, factor: float):
    """ExponentialDecay refuses a factor above 1; MultiplicativeDecay multiplies the lr by it per step."""
    return lr_sched.MultiplicativeDecay(min_lr, lambda step: factor)


def make_scheduler(spec: dict, lr: float, steps_per_epoch: int = 1):
    """Paddle's own scheduler with the reference semantics, or the plain lr.

    A schedule's own base lr is the scheduler's ``learning_rate``; ``timing = "after_epoch"``
    is the schedule one epoch late, after an epoch at the optimizer's lr (``AfterEpoch``).
    A per-step schedule's builder is also told the steps per epoch.
    """
    if spec["name"] in PER_STEP:
        spec = {**spec, "steps_per_epoch": steps_per_epoch}
    if spec["name"] == "plateau":
        return _plateau(spec, lr)
    base = base_lr(spec, lr)
    build = NATIVE_SCHEDULES.get(spec["name"])
    if build is None:
        reference, steps = reference_schedule(spec, base), spec.get("steps_per_epoch", 1)
        scheduler = lr_sched.LambdaDecay(base, lambda t: reference.at(t, steps) / base)
    else:
        scheduler = build(spec, base)
    return AfterEpoch(scheduler, lr) if after_epoch(spec) else scheduler


def _decay(p: dict):
    """Paddle's coupled weight decay: None for none."""
    return p["weight_decay"] or None


def _momentum(params, p, lr):
    if p["momentum"] == 0 and not p["nesterov"]:
        return paddle.optimizer.SGD(lr, parameters=params, weight_decay=_decay(p))
    return paddle.optimizer.Momentum(lr, momentum=p["momentum"], parameters=params, use_nesterov=p["nesterov"],
                                     weight_decay=_decay(p))


# name -> OptimizerBuilder (backends/base.py): one per optimizer the core declares (bench/spec.py OPTIMIZERS).
OPTIMIZER_BUILDERS = {
    "sgd": _momentum,
    "adagrad": lambda params, p, lr: paddle.optimizer.Adagrad(
        lr, epsilon=p["eps"], parameters=params, weight_decay=_decay(p),
        initial_accumulator_value=p["initial_accumulator_value"]),
    "adam": lambda params, p, lr: paddle.optimizer.Adam(
        lr, beta1=p["beta1"], beta2=p["beta2"], epsilon=p["eps"], parameters=params, weight_decay=_decay(p)),
    "rmsprop": lambda params, p, lr: paddle.optimizer.RMSProp(
        lr, rho=p["rho"], epsilon=p["eps"], momentum=p["momentum"], centered=p["centered"], parameters=params,
        weight_decay=_decay(p)),
}


class Backend:
    def version(self) -> str:
        return paddle.__version__

    def setup(self, device: str, threads: int, seed: int) -> tuple[str, int]:
        gpu = paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0
        self.gpu = resolve_device(device, gpu, "Paddle") == "cuda"
        paddle.set_device("gpu" if self.gpu else "cpu")
        used = min(threads, CPU_THREADS)
        paddle.base.core.set_num_threads(used)
        paddle.seed(seed)
        return (f"cuda ({paddle.device.cuda.get_device_name()})" if self.gpu else "cpu"), used

    def set_data(self, train_x, train_y, val_x, val_y) -> None:
        self.train_x, self.train_y, self.val_x, self.val_y = map(paddle.to_tensor, (train_x, train_y, val_x, val_y))

    def build(self, arch, weights, optimizer, schedule, lr, steps_per_epoch) -> None:
        paddle.set_default_dtype(weights_dtype(weights))
        self.model = MODELS[arch.model](arch)
        self.arch = arch
        self.model.set_state_dict({k: paddle.to_tensor(v) for k, v in to_layout(weights, arch, DENSE_IN_OUT).items()})
        self.scheduler = make_scheduler(schedule, lr, steps_per_epoch)
        self.warmup = Warmup(self.scheduler, *warmup(schedule)) if warmup(schedule) else None
        self.batch_scheduler = self.scheduler if schedule["name"] in PER_STEP else self.warmup  # stepped after every batch
        self.logs_step_lrs = lr_moves_per_step(schedule)
        self.optimizer = OPTIMIZER_BUILDERS[optimizer["name"]](self.model.parameters(), optimizer, self.warmup or self.scheduler)
        self.schedule_source = "reference" if isinstance(self.scheduler, ReferencePlateau) else \
            schedule_source(NATIVE_SCHEDULES, schedule)

    def applied_lr(self) -> float:
        return float(self.optimizer.get_lr())

    def train_epoch(self, order, batch_size) -> EpochResult:
        self.model.train()
        order = paddle.to_tensor(order)
        losses, correct = [], paddle.zeros([], dtype="int64")
        lrs = [] if self.logs_step_lrs else None  # host floats: no device sync
        for start in range(0, order.shape[0], batch_size):
            idx = order[start:start + batch_size]
            x, y = paddle.gather(self.train_x, idx), paddle.gather(self.train_y, idx)
            logits = self.model(x)
            loss = F.cross_entropy(logits, y)
            loss.backward()
            if lrs is not None:
                lrs.append(self.optimizer.get_lr())
            self.optimizer.step()
            if self.batch_scheduler is not None:
                self.batch_scheduler.step()
            self.optimizer.clear_grad()
            losses.append(loss.detach())
            correct += (logits.detach().argmax(1) == y).astype("int64").sum()
        return EpochResult(paddle.stack(losses).numpy().astype(np.float64), int(correct),
                           None if lrs is None else np.array(lrs, dtype=np.float64))

    @paddle.no_grad()
    def evaluate(self, batch_size) -> EvalResult:
        self.model.eval()
        loss_sum, predictions = paddle.zeros([], dtype="float64"), []
        for start in range(0, self.val_x.shape[0], batch_size):
            logits = self.model(self.val_x[start:start + batch_size])
            y = self.val_y[start:start + batch_size]
            loss_sum += F.cross_entropy(logits, y, reduction="sum").astype("float64")
            predictions.append(logits.argmax(1))
        return EvalResult(float(loss_sum), paddle.concat(predictions).numpy())

    def end_epoch(self, val_loss: float) -> None:
        if self.scheduler is self.batch_scheduler:
            return
        if isinstance(self.scheduler, (lr_sched.ReduceOnPlateau, ReferencePlateau)):
            self.scheduler.step(val_loss)
        elif isinstance(self.scheduler, lr_sched.LRScheduler):
            self.scheduler.step()
        if self.warmup is not None:
            self.warmup.epoch_done()

    def weights(self) -> dict[str, np.ndarray]:
        return from_layout({k: v.numpy() for k, v in self.model.state_dict().items()}, self.arch, DENSE_IN_OUT)

    @paddle.no_grad()
    def logits(self, x: np.ndarray) -> np.ndarray:
        self.model.eval()
        return self.model(paddle.to_tensor(x)).numpy()

    def synchronize(self) -> None:
        if self.gpu:
            paddle.device.synchronize()
