"""The Backend protocol: what the runner asks of a framework, and nothing more.

The runner owns seeds, initial weights, batch order, metrics, timing and rows. A
backend translates those requests into one framework's idiom: build the model from
the numpy weights (canonical layout, see bench/init.py), map the optimizer and the
schedule onto the framework's own objects, run one epoch over a given order,
evaluate, report the lr it actually applied, and synchronise its device.
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
    batch_lrs: np.ndarray | None = None  # a per-step schedule's lr applied to each batch, in order


@dataclass
class EvalResult:
    loss_sum: float  # summed per-example loss over the evaluated set
    predictions: np.ndarray  # argmax class per example of that set, in order


class OptimizerBuilder(Protocol):
    """An adapter's ``OPTIMIZER_BUILDERS[name]``, one per optimizer the core declares (bench/spec.py OPTIMIZERS)."""

    def __call__(self, params, p: dict, lr):
        """The framework's optimizer over ``params`` (the model's parameters; a framework whose optimizer meets
        them at its first step ignores them) with every parameter of ``p`` (the declaration's, filled in) and
        ``lr``, the first step's (a float: the backend sets later ones as the schedule moves)."""


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
    """A framework's run. The schedule is the core's ``LrControl`` (bench/lr_control.py) over the adapter's
    ``NATIVE``: the backend sets the lr it gives on its optimizer and reads back what the optimizer holds."""

    name: str
    schedule_source: str  # set by build: "native" or "reference" (LrControl.source)

    def version(self) -> str:
        """The framework's version string."""

    def setup(self, device: str, threads: int, seed: int) -> tuple[str, int]:
        """Pick the device ('auto', 'cpu', 'cuda'), set seeds and at most ``threads`` CPU threads.

        Returns the device used and the threads used (recorded in the manifest)."""

    def set_data(self, train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray) -> None:
        """Move the arrays (float32 NCHW, int64) onto the device once."""

    def build(self, arch: Architecture, weights: dict[str, np.ndarray], optimizer: dict, schedule: dict, lr: float,
              steps_per_epoch: int) -> None:
        """Model from canonical weights (in their dtype); the optimizer and the schedule as framework objects.

        steps_per_epoch is for the per-step schedules (bench/schedules.py PER_STEP) and warm-ups, whose lr
        moves after every batch: the backend then sets each batch's lr (``LrControl.epoch_plan``) and reports
        the lr its optimizer applied to each in ``batch_lrs``."""

    def applied_lr(self) -> float:
        """The lr the framework's optimizer will apply to the next batch."""

    def train_epoch(self, order: np.ndarray, batch_size: int) -> EpochResult:
        """One pass over train examples in this order, batches of batch_size (last one partial)."""

    def evaluate(self, batch_size: int, split: str = "val") -> EvalResult:
        """Full pass over the validation set ("val") or the training set ("train", in its stored order) in eval mode."""

    def end_epoch(self, val_loss: float) -> None:
        """Advance the schedule by one epoch (plateau schedules read val_loss): ``LrControl.epoch_done``."""

    def weights(self) -> dict[str, np.ndarray]:
        """Current weights in the canonical layout."""

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Forward pass in eval mode (parity checks)."""

    def synchronize(self) -> None:
        """Block until the device has finished queued work (timing)."""


class Member(Protocol):
    """One run of a fused group, as the runner sees it: what it asks of one run besides training."""

    schedule_source: str

    def applied_lr(self) -> float: ...

    def evaluate(self, batch_size: int, split: str = "val") -> EvalResult: ...

    def end_epoch(self, val_loss: float) -> None: ...

    def weights(self) -> dict[str, np.ndarray]: ...

    def synchronize(self) -> None: ...


class FusedBackend(Protocol):
    """Runs that differ only in lr or schedule, trained at once as one model (``--fused``).

    An adapter whose framework registry says ``fusable`` defines one beside its ``Backend``;
    ``version``, ``setup``, ``set_data`` and ``synchronize`` are the ``Backend``'s. Each member
    gets the same initial weights and batches; the runner evaluates and schedules each through
    ``member(k)``, and times the shared epoch."""

    name: str

    def version(self) -> str: ...

    def setup(self, device: str, threads: int, seed: int) -> tuple[str, int]: ...

    def set_data(self, train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray) -> None: ...

    def build(self, arch: Architecture, weights: dict[str, np.ndarray], members: list[tuple[dict, dict, float]],
              steps_per_epoch: int) -> None:
        """One model holding a copy of ``weights`` per member: (optimizer, schedule, lr) each."""

    def train_epoch(self, order: np.ndarray, batch_size: int) -> list[EpochResult]:
        """One epoch of every member over the same order: one result per member, in member order."""

    def member(self, k: int) -> Member: ...

    def synchronize(self) -> None: ...


def resolve_device(requested: str, has_gpu: bool, framework: str) -> str:
    """"cuda" or "cpu" for ``--device auto|cpu|cuda``; ``cuda`` without a GPU is one line, in every framework alike."""
    if requested == "cuda" and not has_gpu:
        raise BenchError(f"--device cuda but {framework} sees no CUDA GPU: use --device cpu or auto")
    return "cuda" if requested in ("cuda", "auto") and has_gpu else "cpu"


def weights_dtype(weights: dict[str, np.ndarray]) -> str:
    """The dtype the runner drew the weights in ("float32" or "float64"): the model is built in it."""
    return str(next(iter(weights.values())).dtype)
