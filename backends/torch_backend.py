"""PyTorch: eager nn.Modules, torch.optim and torch.optim.lr_scheduler.

Data stays on the device; batch losses and correct counts accumulate there and
come to the host once per epoch (no per-batch ``.item()``). Images and LeNet are
kept channels-last (NHWC in memory): measured on a 2-core CPU, a LeNet MNIST epoch
takes 3.8-4.1 s instead of 4.8-5.0 s. ``torch.compile`` was measured too: 5.0 s an
epoch after 30 s of compiling, so runs stay eager.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import lr_scheduler

from bench.models import Architecture
from bench.schedules import range_factor

from .base import EpochResult, EvalResult, NativeSchedules, resolve_device, weights_dtype

NEVER = 10**9  # total_iters for "from here on, for good"


class LeNet(nn.Module):
    def __init__(self, arch: Architecture):
        super().__init__()
        (c1, c, k1, _), (c2, _, k2, _) = arch.layers["conv1"], arch.layers["conv2"]
        self.conv1 = nn.Conv2d(c, c1, k1, padding=arch.conv1_padding)
        self.conv2 = nn.Conv2d(c1, c2, k2)
        self.fc1, self.fc2, self.fc3 = (nn.Linear(i, o) for o, i in (arch.layers[f"fc{k}"] for k in (1, 2, 3)))

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class MLP(nn.Module):
    def __init__(self, arch: Architecture):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = (nn.Linear(i, o) for o, i in (arch.layers[f"fc{k}"] for k in (1, 2, 3)))

    def forward(self, x):
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


MODELS = {"lenet": LeNet, "mlp": MLP}


# name -> OptimizerBuilder (backends/base.py): one per optimizer the core declares (bench/optimizers.py), but those it refuses.
OPTIMIZER_BUILDERS = {
    "sgd": lambda params, p, lr: torch.optim.SGD(params, lr=lr, momentum=p["momentum"], nesterov=p["nesterov"],
                                                 weight_decay=p["weight_decay"], dampening=0.0),
    "adagrad": lambda params, p, lr: torch.optim.Adagrad(params, lr=lr, eps=p["eps"], weight_decay=p["weight_decay"],
                                                         initial_accumulator_value=p["initial_accumulator_value"],
                                                         lr_decay=0.0),
    "adam": lambda params, p, lr: torch.optim.Adam(params, lr=lr, betas=(p["beta1"], p["beta2"]), eps=p["eps"],
                                                   weight_decay=p["weight_decay"]),
    "rmsprop": lambda params, p, lr: torch.optim.RMSprop(params, lr=lr, alpha=p["rho"], eps=p["eps"],
                                                         momentum=p["momentum"], centered=p["centered"],
                                                         weight_decay=p["weight_decay"]),
}


OPTIMIZER_DEPARTURES: dict[str, tuple[str, ...]] = {}  # torch's formulas are the reference (bench/optimizers.py)


def _holder(lr: float) -> torch.optim.Optimizer:
    """What a torch scheduler drives: an optimizer of its own over no real parameter, its lr read by the core
    (bench/lr_control.py) and set on the run's optimizer. Torch's schedulers compute exactly as on the run's."""
    return torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)


def _advance(scheduler, val_loss) -> None:
    scheduler.optimizer.step()  # no gradient, no update: torch's schedulers check that a step came first
    if isinstance(scheduler, lr_scheduler.ReduceLROnPlateau):
        scheduler.step(val_loss)
    else:
        scheduler.step()


def _cosine(p, lr):
    """Torch's cosine climbs back after T_max: a ConstantLR holds the floor from there."""
    opt = _holder(lr)
    return lr_scheduler.SequentialLR(opt, [lr_scheduler.CosineAnnealingLR(opt, T_max=p["t_max"], eta_min=p["eta_min"]),
                                           lr_scheduler.ConstantLR(opt, factor=p["eta_min"] / lr, total_iters=NEVER)],
                                     milestones=[p["t_max"]])


def _warmup_cosine(p, lr):
    """Warm-up from lr 0 (which LinearLR refuses) is a LambdaLR; then cosine, then its floor held."""
    opt, warmup, start = _holder(lr), p["warmup_epochs"], p["warmup_start_lr"]
    if start > 0:
        warm = lr_scheduler.LinearLR(opt, start_factor=start / lr, end_factor=1.0, total_iters=warmup)
    else:
        warm = lr_scheduler.LambdaLR(opt, lambda e: e / warmup)
    return lr_scheduler.SequentialLR(opt, [warm, lr_scheduler.CosineAnnealingLR(opt, T_max=p["t_max"] - warmup,
                                                                                eta_min=p["eta_min"]),
                                           lr_scheduler.ConstantLR(opt, factor=p["eta_min"] / lr, total_iters=NEVER)],
                                     milestones=[warmup, p["t_max"]])


# The schedules torch computes itself (backends/base.py NativeSchedules); any other runs from the reference.
NATIVE = NativeSchedules(builders={
    "constant": lambda p, lr: lr_scheduler.LambdaLR(_holder(lr), lambda e: 1.0),
    "step": lambda p, lr: lr_scheduler.StepLR(_holder(lr), step_size=p["step_size"], gamma=p["gamma"]),
    "multistep": lambda p, lr: lr_scheduler.MultiStepLR(_holder(lr), milestones=list(p["milestones"]), gamma=p["gamma"]),
    "exponential": lambda p, lr: lr_scheduler.ExponentialLR(_holder(lr), gamma=p["gamma"]),
    "cosine": _cosine,
    "warmup_cosine": _warmup_cosine,
    "cosine_restarts": lambda p, lr: lr_scheduler.CosineAnnealingWarmRestarts(
        _holder(lr), T_0=p["t_0"], T_mult=p["t_mult"], eta_min=p["eta_min"]),
    "polynomial": lambda p, lr: lr_scheduler.PolynomialLR(_holder(lr), total_iters=p["t_max"], power=p["power"]),
    "plateau": lambda p, lr: lr_scheduler.ReduceLROnPlateau(
        _holder(lr), mode="min", factor=p["factor"], patience=p["patience"], threshold=p["threshold"],
        threshold_mode="rel", cooldown=p["cooldown"], min_lr=p["min_lr"]),
    # per step; momentum is not cycled (bench/schedules.py)
    "one_cycle": lambda p, lr: lr_scheduler.OneCycleLR(
        _holder(lr), max_lr=lr, total_steps=p["cycle_epochs"] * p["steps_per_epoch"], pct_start=p["pct_start"],
        anneal_strategy=p["anneal"], div_factor=p["div_factor"], final_div_factor=p["final_div_factor"],
        three_phase=p["three_phase"], cycle_momentum=False),
    "cyclic": lambda p, lr: lr_scheduler.CyclicLR(
        _holder(lr), base_lr=p["min_lr"], max_lr=lr, step_size_up=p["step_size_up"],
        step_size_down=p.get("step_size_down"), mode=p["mode"], gamma=p["gamma"], cycle_momentum=False),
    "cosine_per_step": _cosine,  # its t_max counted in steps
    # ExponentialLR multiplies the lr per step: from min_lr
    "range_test": lambda p, lr: lr_scheduler.ExponentialLR(_holder(p["min_lr"]),
                                                           gamma=range_factor(lr, p["min_lr"], p["steps"])),
}, read=lambda scheduler, count: float(scheduler.optimizer.param_groups[0]["lr"]), advance=_advance)


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> float:
    """Set the lr of the next steps; the lr the optimizer now holds."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    return float(optimizer.param_groups[0]["lr"])


class Backend:
    def version(self) -> str:
        return torch.__version__

    def setup(self, device: str, threads: int, seed: int) -> tuple[str, int]:
        device = resolve_device(device, torch.cuda.is_available(), "torch")
        self.device = torch.device(device)
        torch.set_num_threads(threads)
        torch.manual_seed(seed)
        if device == "cuda":
            return f"cuda ({torch.cuda.get_device_name(0)})", threads
        return "cpu", threads

    def set_data(self, train_x, train_y, val_x, val_y) -> None:
        to = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(self.device)  # noqa: E731
        self.train_x, self.train_y, self.val_x, self.val_y = map(to, (train_x, train_y, val_x, val_y))
        if self.train_x.dim() == 4:
            self.train_x, self.val_x = (a.contiguous(memory_format=torch.channels_last) for a in (self.train_x, self.val_x))

    def build(self, arch, weights, optimizer, lr) -> None:
        dtype = getattr(torch, weights_dtype(weights))
        self.model = MODELS[arch.model](arch).to(self.device, dtype, memory_format=torch.channels_last)
        self.model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
        self.optimizer = OPTIMIZER_BUILDERS[optimizer["name"]](self.model.parameters(), optimizer, lr)

    def set_lr(self, lr: float) -> float:
        return _set_lr(self.optimizer, lr)

    def train_steps(self, order, batch_size, lrs) -> EpochResult:
        self.model.train()
        order = torch.from_numpy(order).to(self.device)
        batches = order.split(batch_size)
        losses = torch.empty(len(batches), dtype=torch.float64, device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        held = None if lrs is None else np.empty(len(batches))
        for i, idx in enumerate(batches):
            x, y = self.train_x[idx], self.train_y[idx]
            logits = self.model(x)
            loss = F.cross_entropy(logits, y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if lrs is not None:  # host floats: no device sync
                held[i] = self.set_lr(lrs[i])
            self.optimizer.step()
            losses[i] = loss.detach()
            correct += (logits.detach().argmax(1) == y).sum()
        return EpochResult(losses.cpu().numpy(), int(correct), held)

    @torch.no_grad()
    def evaluate(self, batch_size, split="val") -> EvalResult:
        self.model.eval()
        return self._evaluate(self.model, batch_size, split)

    def _evaluate(self, forward, batch_size, split) -> EvalResult:
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        predictions = []
        xs, ys = (self.train_x, self.train_y) if split == "train" else (self.val_x, self.val_y)
        for x, y in zip(xs.split(batch_size), ys.split(batch_size)):
            logits = forward(x)
            loss_sum += F.cross_entropy(logits, y, reduction="sum")
            predictions.append(logits.argmax(1))
        return EvalResult(float(loss_sum), torch.cat(predictions).cpu().numpy())

    def weights(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy().copy() for k, v in self.model.state_dict().items()}

    @torch.no_grad()
    def logits(self, x: np.ndarray) -> np.ndarray:
        self.model.eval()
        return self.model(torch.from_numpy(x).to(self.device)).cpu().numpy()

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def compilations(self) -> None:
        return None  # eager


def fused_lenet(p: dict, x: torch.Tensor, padding: int) -> torch.Tensor:
    """K LeNets at once as grouped layers: parameters stacked on a leading axis, logits (K, batch, classes).

    conv1 sees the shared input with all K filter banks; conv2 is a grouped convolution,
    one group per member; the linear layers are batched matrix products.
    """
    k = p["conv1.weight"].shape[0]
    x = F.conv2d(x, p["conv1.weight"].flatten(0, 1), p["conv1.bias"].flatten(), padding=padding)
    x = F.max_pool2d(F.relu(x), 2)
    x = F.conv2d(x, p["conv2.weight"].flatten(0, 1), p["conv2.bias"].flatten(), groups=k)
    x = F.max_pool2d(F.relu(x), 2)  # (batch, K * 16, 5, 5)
    x = x.reshape(x.shape[0], k, -1).transpose(0, 1)  # (K, batch, 400): each member's canonical flatten
    return _fused_linears(p, x)


def fused_mlp(p: dict, x: torch.Tensor, padding: int) -> torch.Tensor:
    """K MLPs at once: the shared flattened input against each member's stacked weights."""
    k = p["fc1.weight"].shape[0]
    return _fused_linears(p, torch.flatten(x, 1).expand(k, -1, -1))


def _fused_linears(p: dict, x: torch.Tensor) -> torch.Tensor:
    for i in (1, 2, 3):
        x = torch.baddbmm(p[f"fc{i}.bias"].unsqueeze(1), x, p[f"fc{i}.weight"].transpose(1, 2))
        if i < 3:
            x = F.relu(x)
    return x


FUSED_MODELS = {"lenet": fused_lenet, "mlp": fused_mlp}


def _like_model(t: torch.Tensor) -> torch.Tensor:
    """A copy in the memory format the model keeps (channels-last convolution weights)."""
    return t.clone(memory_format=torch.channels_last) if t.dim() == 4 else t.clone()


class FusedBackend(Backend):
    """Several runs that differ only in lr or schedule, trained as one model (``--fused``).

    Each member keeps its own parameters, its own torch optimizer and scheduler (so its
    updates are exactly those of a run alone). Per batch, one forward (see ``forward``)
    and one backward serve all members, on the same batch. Member k's loss depends on
    its own parameters only, so the summed loss gives each member its own gradient.
    """

    def build(self, arch, weights, optimizer, lrs) -> None:
        dtype = getattr(torch, weights_dtype(weights))
        self.model = MODELS[arch.model](arch).to(self.device, dtype, memory_format=torch.channels_last)
        self.padding = arch.conv1_padding
        self.grouped = FUSED_MODELS.get(arch.model) if self.device.type == "cuda" or arch.model == "mlp" else None
        self.params = [{k: nn.Parameter(_like_model(torch.from_numpy(v).to(self.device))) for k, v in weights.items()}
                       for _ in lrs]
        self.optimizers = [OPTIMIZER_BUILDERS[optimizer["name"]](p.values(), optimizer, lr)
                           for p, lr in zip(self.params, lrs)]

    def set_lr(self, k: int, lr: float) -> float:
        return _set_lr(self.optimizers[k], lr)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (members, batch, classes): grouped layers, or on a CPU LeNet each member's own forward.

        A CPU LeNet gains nothing from grouped convolutions (its arithmetic dominates), and
        their other summation order, amplified by a high lr, moves the losses off those of
        the runs alone by 1e-1 within an epoch; member by member they stay equal.
        """
        if self.grouped is None:
            return torch.stack([torch.func.functional_call(self.model, p, (x,)) for p in self.params])
        stacked = {name: torch.stack([p[name] for p in self.params]) for name in self.params[0]}
        return self.grouped(stacked, x, self.padding)

    def train_steps(self, order, batch_size) -> list[EpochResult]:
        self.model.train()
        k = len(self.params)
        batches = torch.from_numpy(order).to(self.device).split(batch_size)
        losses = torch.empty(k, len(batches), dtype=torch.float64, device=self.device)
        correct = torch.zeros(k, dtype=torch.int64, device=self.device)
        for i, idx in enumerate(batches):
            x, y = self.train_x[idx], self.train_y[idx]
            logits = self.forward(x)  # (members, batch, classes)
            loss = torch.stack([F.cross_entropy(member, y) for member in logits])  # each as a run alone computes it
            for opt in self.optimizers:
                opt.zero_grad(set_to_none=True)
            loss.sum().backward()
            for opt in self.optimizers:
                opt.step()
            losses[:, i] = loss.detach()
            correct += (logits.detach().argmax(2) == y).sum(1)
        return [EpochResult(row, int(c)) for row, c in zip(losses.cpu().numpy(), correct.cpu())]

    @torch.no_grad()
    def evaluate(self, k, batch_size, split="val") -> EvalResult:
        self.model.eval()
        params = self.params[k]
        return self._evaluate(lambda x: torch.func.functional_call(self.model, params, (x,)), batch_size, split)

    def weights(self, k) -> dict[str, np.ndarray]:
        return {name: v.detach().cpu().numpy().copy() for name, v in self.params[k].items()}
