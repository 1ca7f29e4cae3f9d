"""The Backend protocol: what the runner asks of a framework, and nothing more.

The runner owns seeds, initial weights, batch order, metrics, timing and rows. A
backend translates those requests into one framework's idiom: build the model from
the numpy weights (canonical layout, see bench/init.py), build the framework's
optimizer, set the lr it is given and report the lr its optimizer holds, take the
optimizer steps of a given order, evaluate, and synchronise its device. Its optimizers,
where their formulas depart from the reference (bench/optimizers.py), and the schedules
the framework computes itself are plain registries that the core reads
(``OPTIMIZER_BUILDERS``, ``OPTIMIZER_DEPARTURES``, ``NATIVE``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from bench.errors import BenchError
from bench.models import Architecture


@dataclass
class EpochResult:
    batch_losses: np.ndarray  # mean loss of each batch, in order (float64)
    correct: int  # correct predictions over the epoch's forward passes
    batch_lrs: np.ndarray | None = None  # the lr the optimizer held at each step, where train_steps was given lrs


@dataclass
class EvalResult:
    loss_sum: float  # summed per-example loss over the evaluated set
    predictions: np.ndarray  # argmax class per example of that set, in order


class OptimizerBuilder(Protocol):
    """An adapter's ``OPTIMIZER_BUILDERS[name]``: one per optimizer the core declares (bench/optimizers.py) but
    those its framework refuses (backends/__init__.py ``Framework.refuses``). Every adapter's has this signature."""

    def __call__(self, params, p: dict, lr):
        """The framework's optimizer over ``params`` (the model's parameters; a framework whose optimizer meets
        them at its first step ignores them) with every parameter of ``p`` (the declaration's, filled in) and
        ``lr``, the first step's (a float: the runner sets later ones as the schedule moves)."""


class ScheduleBuilder(Protocol):
    """An entry of an adapter's ``NATIVE.builders``: one per declared schedule (bench/schedules.py SCHEDULES)
    that the framework has its own object for."""

    def __call__(self, p: dict, lr: float):
        """The framework's schedule object for parameters ``p`` (filled in, and ``steps_per_epoch``: a per-step
        schedule's length is in epochs, and Optax's schedules count steps) from base lr ``lr``; None where its
        object departs from the reference for these parameters (the run then follows the reference, and its
        manifest says so)."""


@dataclass(frozen=True)
class NativeSchedules:
    """An adapter's ``NATIVE``: the schedules its framework computes itself, and the two ways the core
    (bench/lr_control.py) works one of its objects. Any declared schedule not in ``builders`` runs from the
    reference; docs/frameworks.md lists which are which, and a contract test holds each adapter to it."""

    builders: dict[str, ScheduleBuilder]
    read: Callable[[object, int], float]  # (object, count) -> the lr it gives at count: epochs, or steps if per step
    advance: Callable[[object, float | None], None]  # (object, val_loss) -> one count on (plateau reads val_loss)


class Backend(Protocol):
    """A framework's run, a stateless translator: the runner owns the lr (``LrControl``, bench/lr_control.py,
    over the adapter's ``NATIVE``) and tells the backend each lr to set; the backend sets it and reports what
    its optimizer holds."""

    name: str

    def version(self) -> str:
        """The framework's version string."""

    def setup(self, device: str, threads: int, seed: int) -> tuple[str, int]:
        """Pick the device ('auto', 'cpu', 'cuda'), set seeds and at most ``threads`` CPU threads.

        Returns the device used and the threads used (recorded in the manifest)."""

    def set_data(self, train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray) -> None:
        """Move the arrays (float32 NCHW, int64) onto the device once."""

    def build(self, arch: Architecture, weights: dict[str, np.ndarray], optimizer: dict, lr: float) -> None:
        """Model from canonical weights (in their dtype); the optimizer (``OPTIMIZER_BUILDERS``) at ``lr``."""

    def set_lr(self, lr: float) -> float:
        """Set the lr of the next steps; the lr the optimizer now holds."""

    def train_steps(self, order: np.ndarray, batch_size: int, lrs: np.ndarray | None) -> EpochResult:
        """One optimizer step per batch of ``order`` (batches of batch_size, the last one partial).

        ``lrs``: each step's lr, set before its update, where the lr moves per step (a per-step schedule, a
        warm-up); ``batch_lrs`` is then what the optimizer held at each. None: the lr holds."""

    def evaluate(self, batch_size: int, split: str = "val") -> EvalResult:
        """Full pass over the validation set ("val") or the training set ("train", in its stored order) in eval mode."""

    def weights(self) -> dict[str, np.ndarray]:
        """Current weights in the canonical layout."""

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Forward pass in eval mode (parity checks)."""

    def synchronize(self) -> None:
        """Block until the device has finished queued work (timing)."""

    def compilations(self) -> int | None:
        """How many times the training step was compiled since ``build``: once per batch shape (a full batch,
        and a partial last one) and never again. None: the framework runs each step eagerly."""


class FusedBackend(Protocol):
    """Runs that differ only in lr or schedule, trained at once as one model (``--fused``).

    An adapter whose framework registry says ``fusable`` defines one beside its ``Backend``;
    ``version``, ``setup``, ``set_data`` and ``synchronize`` are the ``Backend``'s. Each member
    gets the same initial weights and batches; the runner sets each member's lr, evaluates it
    and reads its weights by its index ``k``, and times the shared steps. An lr that moves per
    step trains alone (bench/executors.py), so the members' lrs hold through the steps."""

    name: str

    def version(self) -> str: ...

    def setup(self, device: str, threads: int, seed: int) -> tuple[str, int]: ...

    def set_data(self, train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray) -> None: ...

    def build(self, arch: Architecture, weights: dict[str, np.ndarray], optimizer: dict, lrs: list[float]) -> None:
        """One model holding a copy of ``weights`` per member, each with the optimizer at its lr."""

    def set_lr(self, k: int, lr: float) -> float: ...

    def train_steps(self, order: np.ndarray, batch_size: int) -> list[EpochResult]:
        """Every member's steps over the same order: one result per member, in member order."""

    def evaluate(self, k: int, batch_size: int, split: str = "val") -> EvalResult: ...

    def weights(self, k: int) -> dict[str, np.ndarray]: ...

    def synchronize(self) -> None: ...


def resolve_device(requested: str, has_gpu: bool, framework: str) -> str:
    """"cuda" or "cpu" for ``--device auto|cpu|cuda``; ``cuda`` without a GPU is one line, in every framework alike."""
    if requested == "cuda" and not has_gpu:
        raise BenchError(f"--device cuda but {framework} sees no CUDA GPU: use --device cpu or auto")
    return "cuda" if requested in ("cuda", "auto") and has_gpu else "cpu"


def weights_dtype(weights: dict[str, np.ndarray]) -> str:
    """The dtype the runner drew the weights in ("float32" or "float64"): the model is built in it."""
    return str(next(iter(weights.values())).dtype)
