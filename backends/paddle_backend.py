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
from bench.schedules import range_factor

from .base import EpochResult, EvalResult, NativeSchedules, resolve_device, weights_dtype

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


def _plateau(p, lr):
    """Paddle's ReduceOnPlateau; with a cooldown, None: the reference (Paddle skips the improvement check while
    cooling down, PyTorch does not)."""
    if p["cooldown"]:
        return None
    return lr_sched.ReduceOnPlateau(lr, mode="min", factor=p["factor"], patience=p["patience"],
                                    threshold=p["threshold"], threshold_mode="rel", cooldown=0, min_lr=p["min_lr"])


def _cosine(p, lr):
    return HoldFloor(lr_sched.CosineAnnealingDecay(lr, T_max=p["t_max"], eta_min=p["eta_min"]), p["t_max"], p["eta_min"])


def _warmup_cosine(p, lr):
    w = p["warmup_epochs"]
    cosine = lr_sched.CosineAnnealingDecay(lr, T_max=p["t_max"] - w, eta_min=p["eta_min"])
    warm = lr_sched.LinearWarmup(cosine, warmup_steps=w, start_lr=p["warmup_start_lr"], end_lr=lr)
    return HoldFloor(warm, p["t_max"], p["eta_min"])


def _range_test(min_lr: float, factor: float):
    """ExponentialDecay refuses a factor above 1; MultiplicativeDecay multiplies the lr by it per step."""
    return lr_sched.MultiplicativeDecay(min_lr, lambda step: factor)


def _advance(scheduler, val_loss) -> None:
    if isinstance(scheduler, lr_sched.ReduceOnPlateau):
        scheduler.step(val_loss)
    else:
        scheduler.step()


# The schedules Paddle computes itself (backends/base.py NativeSchedules), each a paddle.optimizer.lr
# scheduler; any other runs from the reference.
NATIVE = NativeSchedules(builders={
    "constant": lambda p, lr: lr_sched.LambdaDecay(lr, lambda epoch: 1.0),
    "step": lambda p, lr: lr_sched.StepDecay(lr, step_size=p["step_size"], gamma=p["gamma"]),
    "multistep": lambda p, lr: lr_sched.MultiStepDecay(lr, milestones=list(p["milestones"]), gamma=p["gamma"]),
    "exponential": lambda p, lr: lr_sched.ExponentialDecay(lr, gamma=p["gamma"]),
    "cosine": _cosine,
    "warmup_cosine": _warmup_cosine,
    "cosine_restarts": lambda p, lr: lr_sched.CosineAnnealingWarmRestarts(lr, T_0=p["t_0"], T_mult=p["t_mult"],
                                                                          eta_min=p["eta_min"]),
    "polynomial": lambda p, lr: lr_sched.PolynomialDecay(lr, decay_steps=p["t_max"], end_lr=0.0, power=p["power"],
                                                         cycle=False),
    "plateau": _plateau,
    # per step. Paddle's one-cycle ends at an absolute end_learning_rate (default 1e-4): pinned to torch's
    # peak / div_factor / final_div_factor.
    "one_cycle": lambda p, lr: lr_sched.OneCycleLR(
        lr, total_steps=p["cycle_epochs"] * p["steps_per_epoch"], divide_factor=p["div_factor"],
        end_learning_rate=lr / p["div_factor"] / p["final_div_factor"], phase_pct=p["pct_start"],
        anneal_strategy=p["anneal"], three_phase=p["three_phase"]),
    "cyclic": lambda p, lr: lr_sched.CyclicLR(p["min_lr"], lr, step_size_up=p["step_size_up"],
                                              step_size_down=p.get("step_size_down"), mode=p["mode"], exp_gamma=p["gamma"]),
    "cosine_per_step": _cosine,  # its t_max counted in steps
    "range_test": lambda p, lr: _range_test(p["min_lr"], range_factor(lr, p["min_lr"], p["steps"])),
}, read=lambda scheduler, count: float(scheduler()), advance=_advance)


def _decay(p: dict):
    """Paddle's coupled weight decay: None for none."""
    return p["weight_decay"] or None


def _momentum(params, p, lr):
    if p["momentum"] == 0 and not p["nesterov"]:
        return paddle.optimizer.SGD(lr, parameters=params, weight_decay=_decay(p))
    return paddle.optimizer.Momentum(lr, momentum=p["momentum"], parameters=params, use_nesterov=p["nesterov"],
                                     weight_decay=_decay(p))


# name -> OptimizerBuilder (backends/base.py): one per optimizer the core declares (bench/optimizers.py), but those it refuses.
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
# Where Paddle's formula departs from the reference (bench/optimizers.py DEPARTURES), as the module docstring says.
OPTIMIZER_DEPARTURES = {"rmsprop": ("eps_in_sqrt", "lr_in_momentum")}


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

    def build(self, arch, weights, optimizer, lr) -> None:
        paddle.set_default_dtype(weights_dtype(weights))
        self.model = MODELS[arch.model](arch)
        self.arch = arch
        self.model.set_state_dict({k: paddle.to_tensor(v) for k, v in to_layout(weights, arch, DENSE_IN_OUT).items()})
        self.optimizer = OPTIMIZER_BUILDERS[optimizer["name"]](self.model.parameters(), optimizer, lr)

    def set_lr(self, lr: float) -> float:
        self.optimizer.set_lr(lr)
        return float(self.optimizer.get_lr())

    def train_steps(self, order, batch_size, lrs) -> EpochResult:
        self.model.train()
        order = paddle.to_tensor(order)
        losses, correct = [], paddle.zeros([], dtype="int64")
        held = None if lrs is None else np.empty(len(lrs))
        for i, start in enumerate(range(0, order.shape[0], batch_size)):
            idx = order[start:start + batch_size]
            x, y = paddle.gather(self.train_x, idx), paddle.gather(self.train_y, idx)
            logits = self.model(x)
            loss = F.cross_entropy(logits, y)
            loss.backward()
            if lrs is not None:  # host floats: no device sync
                held[i] = self.set_lr(lrs[i])
            self.optimizer.step()
            self.optimizer.clear_grad()
            losses.append(loss.detach())
            correct += (logits.detach().argmax(1) == y).astype("int64").sum()
        return EpochResult(paddle.stack(losses).numpy().astype(np.float64), int(correct), held)

    @paddle.no_grad()
    def evaluate(self, batch_size, split="val") -> EvalResult:
        self.model.eval()
        loss_sum, predictions = paddle.zeros([], dtype="float64"), []
        xs, ys = (self.train_x, self.train_y) if split == "train" else (self.val_x, self.val_y)
        for start in range(0, xs.shape[0], batch_size):
            logits = self.model(xs[start:start + batch_size])
            y = ys[start:start + batch_size]
            loss_sum += F.cross_entropy(logits, y, reduction="sum").astype("float64")
            predictions.append(logits.argmax(1))
        return EvalResult(float(loss_sum), paddle.concat(predictions).numpy())

    def weights(self) -> dict[str, np.ndarray]:
        return from_layout({k: v.numpy() for k, v in self.model.state_dict().items()}, self.arch, DENSE_IN_OUT)

    @paddle.no_grad()
    def logits(self, x: np.ndarray) -> np.ndarray:
        self.model.eval()
        return self.model(paddle.to_tensor(x)).numpy()

    def synchronize(self) -> None:
        if self.gpu:
            paddle.device.synchronize()

    def compilations(self) -> None:
        return None  # dygraph: eager
