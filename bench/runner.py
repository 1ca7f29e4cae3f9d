"""One training run, the same loop for every framework.

The runner owns everything that must be identical across frameworks: seeds, initial
weights, the batch order of every epoch, the metric definitions, the timing and the
rows. The backend only executes what it is asked, in its framework's idiom.
"""

from __future__ import annotations

import os
import platform
import random
import socket
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from .data import load_dataset
from .errors import BenchError
from .init import initial_weights
from .lr_control import LrControl
from .models import architecture
from .optimizers import OPTIMIZERS
from .outcome import at_chance, chance_note
from .provenance import lrbench_version
from .schedules import SCHEDULES
from .spec import ChainStart, RunSpec

EVAL_BATCH = 1000
Tell = Callable[[str, int, float, float], None]  # (run_id, epoch, train loss, val accuracy) after each epoch


@dataclass
class Outcome:
    rows: list[dict] = field(default_factory=list)
    manifest: dict = field(default_factory=dict)
    weights: dict | None = None  # a warm-start stage's network at its end: where the next stage starts
    log: str = ""  # what the framework printed while it trained (bench/worker_output.py)


def batch_orders(seed: int, n: int):
    """Each epoch's permutation, drawn from the seed alone: identical in every framework."""
    rng = np.random.default_rng([seed, 0xBA7C4])
    while True:
        yield rng.permutation(n).astype(np.int64)


def train(spec: RunSpec, data_dir=None, threads: int | None = None) -> Outcome:
    """Run ``spec`` to the end (or to divergence); failures become a ``failed`` manifest."""
    return train_group([spec], data_dir, threads)[0]


def train_group(specs: list[RunSpec], data_dir=None, threads: int | None = None, verify: bool = True,
                start: ChainStart | None = None) -> list[Outcome]:
    """``stream_group``'s outcomes, all of them."""
    return list(stream_group(specs, data_dir, threads, verify, start))


def stream_group(specs: list[RunSpec], data_dir=None, threads: int | None = None, verify: bool = True,
                 start: ChainStart | None = None, tell: Tell | None = None) -> Iterator[Outcome]:
    """Runs that train together in one process: one run alone, a fused group, or a warm-start chain.
    Each outcome is yielded as soon as it is final, so a chain's finished stages are kept if it is stopped.

    Fused (``--fused``): runs that differ only in lr or schedule train at once as one model;
    each member gets the rows and manifest it would get alone, and its epoch seconds are the
    fused model's, as that is the time the member's epoch took.
    ``verify``: check the data files' checksums; a local worker is spared it, as the driver
    checked the same files before any run (a Ray worker on another machine checks its own).
    Warm start (``protocol = "warm_start"``): the stages of one chain; the network trains at
    each lr of the chain in turn from where the previous stage left it, so every stage up to
    the last one asked for is trained, and the outcomes of the stages asked for are yielded.
    ``start``: a finished stage's network to go on from (a resumed chain), instead of the chain's start.
    ``tell``: called after each epoch of each run (a local worker sends it on to the driver's display).
    """
    threads = threads or os.cpu_count() or 1
    fused = 1 if specs[0].chain else len(specs)
    outs = [Outcome(manifest=manifest_base(spec, threads, fused=fused)) for spec in specs]
    left = list(outs)
    begun = time.perf_counter()
    try:
        for out in _train(specs, data_dir, threads, outs, verify, start, tell):
            left.remove(out)
            yield out
    except Exception as e:  # the run fails, the sweep goes on
        for out in left:
            if out.manifest["status"] == "failed" and not out.manifest["error"]:
                out.manifest["error"] = str(e) if isinstance(e, BenchError) else _one_line(e)
    for out in left:
        out.manifest["wall_seconds"] = out.manifest["wall_seconds"] or round(time.perf_counter() - begun, 3)
        yield out


@dataclass
class Prepared:
    """A framework ready to train ``spec``: its backend set up, the data on its device, the initial weights."""

    backend: object
    native: object  # the adapter's NATIVE: the schedules its framework computes (backends/base.py)
    device: str
    threads: int
    data: object
    arch: object
    weights: dict
    import_seconds: float  # the framework's import and setup
    data_seconds: float  # the dataset loaded and put on the device, the weights drawn


def prepare(spec: RunSpec, data_dir, threads: int, verify: bool = True, fused: bool = False) -> Prepared:
    """Seeds, the framework's backend, the data and the initial weights: what every run starts from."""
    from backends import load_adapter, load_backend  # imports the framework, in this process only

    random.seed(spec.seed)
    np.random.seed(spec.seed)
    t0 = time.perf_counter()
    backend = load_backend(spec.framework, fused=fused)
    device, threads_used = backend.setup(spec.device, threads, spec.seed)
    t1 = time.perf_counter()
    data = load_dataset(spec.dataset, data_dir, normalize=spec.normalize, verify=verify,
                        train_size=spec.train_size, val_size=spec.val_size)
    if spec.batch_size > len(data.train_y):
        raise BenchError(f"batch_size {spec.batch_size} is larger than the {len(data.train_y)} training examples: lower it")
    arch = architecture(spec.model, data.input_shape, data.classes)
    backend.set_data(data.train_x.astype(spec.dtype), data.train_y, data.val_x.astype(spec.dtype), data.val_y)
    weights = {k: v.astype(spec.dtype) for k, v in initial_weights(arch, spec.seed, spec.init).items()}
    return Prepared(backend, load_adapter(spec.framework).NATIVE, device, threads_used, data, arch, weights, round(t1 - t0, 3),
                    round(time.perf_counter() - t1, 3))


def _train(specs: list[RunSpec], data_dir, threads: int, outs: list[Outcome], verify: bool,
           start: ChainStart | None, tell: Tell | None) -> Iterator[Outcome]:
    """Train ``specs``; yield each outcome once it is final (a chain's stage by stage, else all at the end)."""
    spec = specs[0]  # what the runs share: everything but lr and schedule
    fused = len(specs) > 1 and not spec.chain
    ready = prepare(spec, data_dir, threads, verify, fused)
    backend, device, data, arch, weights = ready.backend, ready.device, ready.data, ready.arch, ready.weights
    for out in outs:
        out.manifest.update(framework_version=backend.version(), device=device, threads=ready.threads,
                            import_seconds=ready.import_seconds, data_seconds=ready.data_seconds)
    orders = batch_orders(spec.seed, len(data.train_y))  # one stream of batches, also across the stages of a chain
    if not spec.chain:
        _fit(backend, ready.native, specs, outs, arch, weights, data, orders, device, fused, tell)
        yield from outs
        return
    first = 0
    if start:  # the stages up to start.stage are finished: go on from the network they left
        first, weights = start.stage + 1, start.weights
        for _ in range(start.orders_used):
            next(orders)
    wanted = {s.run_id: out for s, out in zip(specs, outs)}
    for k in range(first, max(s.stage for s in specs) + 1):
        stage = spec.stage_spec(k)
        out = wanted.get(stage.run_id) or Outcome(manifest=manifest_base(stage, threads))  # done before: not kept
        begun = time.perf_counter()
        _fit(backend, ready.native, [stage], [out], arch, weights, data, orders, device, False, tell)
        out.manifest["wall_seconds"] = round(time.perf_counter() - begun, 3)
        weights = backend.weights()  # the next stage continues from here, with a new optimizer
        if stage.run_id in wanted:
            out.weights = weights if k + 1 < len(spec.chain) else None  # kept until the next stage is done
            yield out


def _fit(backend, native, specs: list[RunSpec], outs: list[Outcome], arch, weights, data, orders, device,
         fused: bool, tell: Tell | None = None) -> None:
    """Build the model(s) from ``weights`` and train every epoch of ``specs``: the loop, the lr and the timing
    in plain sight. ``fused``: ``backend`` is a FusedBackend, one member per spec (backends/base.py)."""
    spec, n = specs[0], len(data.train_y)
    steps_per_epoch = -(-n // spec.batch_size)
    start = time.perf_counter()
    controls = [LrControl(SCHEDULES[s.schedule["name"]].typed(s.schedule), s.lr, steps_per_epoch, native) for s in specs]
    optimizer = OPTIMIZERS[spec.optimizer["name"]].typed(spec.optimizer)
    if fused:
        backend.build(arch, weights, optimizer, [c.lr() for c in controls])
    else:
        backend.build(arch, weights, optimizer, controls[0].lr())
    runs = [_Run(s, out, control, _Member.of(backend, k if fused else None), backend.version(), device, tell)
            for k, (s, out, control) in enumerate(zip(specs, outs, controls))]
    for run in runs:  # the framework's own scheduler, or the reference driving it
        run.out.manifest.update(schedule_source=run.control.source, build_seconds=round(time.perf_counter() - start, 3))
    for epoch in range(1, spec.epochs + 1):
        order = next(orders)
        plans = [run.control.epoch_plan(steps_per_epoch) for run in runs]
        lrs = [run.held for run in runs]

        backend.synchronize()
        t0 = time.perf_counter()
        assert not fused or plans.count(None) == len(plans), "an lr that moves per step trains alone"
        results = backend.train_steps(order, spec.batch_size) if fused else [
            backend.train_steps(order, spec.batch_size, plans[0])]
        backend.synchronize()
        seconds = time.perf_counter() - t0
        for run, result, lr in zip(runs, results, lrs):
            if run.status is None:
                run.epoch(epoch, result, lr, seconds, data, steps_per_epoch)
        if all(r.status is not None for r in runs):
            break
    for run in runs:
        run.finish()


@dataclass(frozen=True)
class _Member:
    """What one run asks of its backend besides training: a Backend's own methods, or a fused one's for member k."""

    set_lr: Callable[[float], float]
    evaluate: Callable[..., object]
    weights: Callable[[], dict]
    synchronize: Callable[[], None]

    @classmethod
    def of(cls, backend, k: int | None) -> _Member:
        bind = (lambda method: method) if k is None else (lambda method: partial(method, k))
        return cls(bind(backend.set_lr), bind(backend.evaluate), bind(backend.weights), backend.synchronize)


class _Run:
    """One run's lr, rows, status and timing; its ``member`` evaluates it and sets its lr."""

    def __init__(self, spec: RunSpec, out: Outcome, control: LrControl, member: _Member, version: str, device: str,
                 tell: Tell | None = None):
        self.spec, self.out, self.control, self.member, self.tell = spec, out, control, member, tell
        self.held = member.set_lr(control.lr())  # the lr the optimizer holds for the next step
        self.row = _row_factory(spec, version, device)
        self.epoch_seconds: list[float] = []
        self.one_class_streak = 0
        self.last: tuple[int, float, int, int] = (0, 0.0, 0, 0)  # classes predicted, val accuracy, classes, epoch
        self.status: str | None = None  # set when the run stops early (diverged)

    def epoch(self, epoch: int, result, lr: float, seconds: float, data, steps_per_epoch: int) -> None:
        spec, row, n = self.spec, self.row, len(data.train_y)
        self.member.synchronize()
        t1 = time.perf_counter()
        evaluation = self.member.evaluate(EVAL_BATCH)
        self.member.synchronize()
        eval_seconds = time.perf_counter() - t1

        train_loss = float(np.mean(result.batch_losses))
        val_loss = evaluation.loss_sum / len(data.val_y)
        val_acc = float(np.mean(evaluation.predictions == data.val_y))
        classes_predicted = len(np.unique(evaluation.predictions))
        self.epoch_seconds.append(seconds)

        rows = [
            row(epoch, "train", "loss", train_loss),
            row(epoch, "train", "accuracy", result.correct / n),
            row(epoch, "train", "lr", lr),
            row(epoch, "train", "epoch_seconds", seconds),
            row(epoch, "val", "loss", val_loss),
            row(epoch, "val", "accuracy", val_acc),
            row(epoch, "val", "classes_predicted", classes_predicted),
            row(epoch, "val", "eval_seconds", eval_seconds),
        ]
        if spec.eval_train:  # as originals that print a "Train Accuracy" measure it
            on_train = self.member.evaluate(EVAL_BATCH, "train")
            rows += [row(epoch, "train", "eval_loss", on_train.loss_sum / n),
                     row(epoch, "train", "eval_accuracy", float(np.mean(on_train.predictions == data.train_y)))]
        if spec.floor_cost:  # the SIGNS original: 34 batches of 1080 at 32, their costs summed over int(1080 / 32) = 33
            rows.append(row(epoch, "train", "cost", float(np.sum(result.batch_losses)) / (n // spec.batch_size)))
        for name, w in self.member.weights().items():
            if name.endswith(".weight"):
                rows.append(row(epoch, "train", f"weight_norm/{name[:-7]}", float(np.linalg.norm(w))))
        first_step = (epoch - 1) * steps_per_epoch
        for i, metric, value in logged_losses(spec, result.batch_losses, first_step):
            rows.append(row(epoch, "train", metric, value, step=first_step + i + 1))
            if result.batch_lrs is not None:  # a per-step schedule: the lr that step applied
                rows.append(row(epoch, "train", "lr", float(result.batch_lrs[i]), step=first_step + i + 1))
        self.out.rows.extend(rows)
        self.out.manifest["epochs_done"] = epoch
        if self.tell:
            self.tell(spec.run_id, epoch, train_loss, val_acc)

        if not np.all(np.isfinite(result.batch_losses)) or not np.isfinite(val_loss):
            self.status = "diverged"
            return
        self.one_class_streak = self.one_class_streak + 1 if classes_predicted == 1 else 0
        self.last = (classes_predicted, val_acc, data.classes, epoch)
        self.held = self.member.set_lr(self.control.epoch_done(val_loss))

    def finish(self) -> None:
        status = self.status
        if status is None and self.one_class_streak >= self.spec.collapse_epochs:
            status = "collapsed"  # predicts a single class on the whole validation set
        elif status is None and at_chance(*self.last):
            status, self.out.manifest["error"] = "collapsed", chance_note(*self.last[:3])
        status = status or "done"
        self.out.manifest.update(
            status=status,
            first_epoch_seconds=round(self.epoch_seconds[0], 4),
            median_epoch_seconds=round(statistics.median(self.epoch_seconds[1:]), 4) if len(self.epoch_seconds) > 1 else "",
        )


def logged_losses(spec: RunSpec, batch_losses, first_step: int) -> list[tuple[int, str, float]]:
    """(batch index in the epoch, metric, value) of the step losses ``spec.log_every`` and ``log_at`` ask for."""
    every, losses = spec.log_every, batch_losses
    if not every:
        return []
    if spec.log_at == "running":  # the mean since the last print, as ``running_loss / N`` at ``i % N == N - 1``
        return [(i, "running_loss", float(np.mean(losses[i + 1 - every:i + 1]))) for i in range(every - 1, len(losses), every)]
    logged = (lambda i: i % every == 0) if spec.log_at == "batch_id" else (lambda i: (first_step + i + 1) % every == 0)
    return [(i, "loss", float(loss)) for i, loss in enumerate(losses) if logged(i)]


def _row_factory(spec: RunSpec, version: str, device: str):
    base = {
        "run_id": spec.run_id, "study": spec.study, "framework": spec.framework,
        "framework_version": version, "device": device, "model": spec.model, "dataset": spec.dataset,
        "optimizer": spec.optimizer_label, "schedule": spec.schedule_label, "lr": spec.lr,
        "batch_size": spec.batch_size, "seed": spec.seed, "init": spec.init, "protocol": spec.protocol,
    }

    def row(epoch, split, metric, value, step=""):
        return {**base, "epoch": epoch, "step": step, "split": split, "metric": metric, "value": value}

    return row


def manifest_base(spec: RunSpec, threads: int, fused: int = 1) -> dict:
    """A run's manifest before it trains (status "failed" until it ends): what an executor records for a run that
    never reached a worker. ``fused``: how many runs trained as one model with this one (1: alone)."""
    return {
        "run_id": spec.run_id, "study": spec.study, "framework": spec.framework, "framework_version": "",
        "device": spec.device, "threads": threads, "fused": fused, "model": spec.model, "dataset": spec.dataset,
        "optimizer": spec.optimizer_label, "schedule": spec.schedule_label, "lr": spec.lr,
        "batch_size": spec.batch_size, "seed": spec.seed, "init": spec.init, "protocol": spec.protocol,
        "epochs": spec.epochs, "epochs_done": 0, "schedule_source": "",
        "status": "failed", "error": "", "wall_seconds": "", "first_epoch_seconds": "",
        "median_epoch_seconds": "", "import_seconds": "", "data_seconds": "", "build_seconds": "",
        "process_seconds": "", "process_run": "", "python": sys.version.split()[0], "numpy": np.__version__,
        "platform": platform.platform(), "node": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "lrbench": lrbench_version(), "spec": spec.to_json(),
    }


def _one_line(e: BaseException) -> str:
    where = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
    at = f" at {os.path.basename(where.filename)}:{where.lineno}" if where else ""
    return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}{at}"
