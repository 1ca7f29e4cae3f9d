"""One training run, the same loop for every framework.

The runner owns everything that must be identical across frameworks: seeds, initial
weights, the batch order of every epoch, the metric definitions, the timing and the
rows. The backend only executes what it is asked, in its framework's idiom.
"""

from __future__ import annotations

import os
import platform
import random
import statistics
import sys
import time
import traceback
from dataclasses import dataclass, field

import numpy as np

from .data import load_dataset
from .errors import BenchError
from .init import architecture, initial_weights
from .progress import Progress
from .spec import RunSpec

EVAL_BATCH = 1000


@dataclass
class Outcome:
    rows: list[dict] = field(default_factory=list)
    manifest: dict = field(default_factory=dict)


def batch_orders(seed: int, n: int):
    """Each epoch's permutation, drawn from the seed alone: identical in every framework."""
    rng = np.random.default_rng([seed, 0xBA7C4])
    while True:
        yield rng.permutation(n).astype(np.int64)


def train(spec: RunSpec, data_dir=None, threads: int | None = None) -> Outcome:
    """Run ``spec`` to the end (or to divergence); failures become a ``failed`` manifest."""
    threads = threads or os.cpu_count() or 1
    out = Outcome(manifest=_manifest_base(spec, threads))
    start = time.perf_counter()
    try:
        _train(spec, data_dir, threads, out)
    except Exception as e:  # the run fails, the sweep goes on
        out.manifest["status"] = "failed"
        out.manifest["error"] = str(e) if isinstance(e, BenchError) else _one_line(e)
    out.manifest["wall_seconds"] = round(time.perf_counter() - start, 3)
    return out


def _train(spec: RunSpec, data_dir, threads: int, out: Outcome) -> None:
    from backends import load_backend  # imports the framework, in this process only

    random.seed(spec.seed)
    np.random.seed(spec.seed)
    backend = load_backend(spec.framework)
    device, threads_used = backend.setup(spec.device, threads, spec.seed)
    out.manifest.update(framework_version=backend.version(), device=device, threads=threads_used)

    data = load_dataset(spec.dataset, data_dir, normalize=spec.normalize,
                        train_size=spec.train_size, val_size=spec.val_size)
    n = len(data.train_y)
    if spec.batch_size > n:
        raise BenchError(f"batch_size {spec.batch_size} is larger than the {n} training examples: lower it")
    arch = architecture(spec.model, data.input_shape, data.classes)
    backend.set_data(data.train_x.astype(spec.dtype), data.train_y, data.val_x.astype(spec.dtype), data.val_y)
    weights = {k: v.astype(spec.dtype) for k, v in initial_weights(arch, spec.seed).items()}
    steps_per_epoch = -(-n // spec.batch_size)
    backend.build(arch, weights, spec.optimizer, spec.schedule, spec.lr, steps_per_epoch)

    row = _row_factory(spec, backend.version(), device)
    progress = Progress(spec)
    epoch_seconds, one_class_streak, status = [], 0, "done"
    orders = batch_orders(spec.seed, n)
    for epoch in range(1, spec.epochs + 1):
        order = next(orders)
        lr = backend.applied_lr()

        backend.synchronize()
        t0 = time.perf_counter()
        result = backend.train_epoch(order, spec.batch_size)
        backend.synchronize()
        t1 = time.perf_counter()
        evaluation = backend.evaluate(EVAL_BATCH)
        backend.synchronize()
        t2 = time.perf_counter()

        train_loss = float(np.mean(result.batch_losses))
        val_loss = evaluation.loss_sum / len(data.val_y)
        val_acc = float(np.mean(evaluation.predictions == data.val_y))
        classes_predicted = len(np.unique(evaluation.predictions))
        epoch_seconds.append(t1 - t0)

        rows = [
            row(epoch, "train", "loss", train_loss),
            row(epoch, "train", "accuracy", result.correct / n),
            row(epoch, "train", "lr", lr),
            row(epoch, "train", "epoch_seconds", t1 - t0),
            row(epoch, "val", "loss", val_loss),
            row(epoch, "val", "accuracy", val_acc),
            row(epoch, "val", "classes_predicted", classes_predicted),
            row(epoch, "val", "eval_seconds", t2 - t1),
        ]
        for name, w in backend.weights().items():
            if name.endswith(".weight"):
                rows.append(row(epoch, "train", f"weight_norm/{name[:-7]}", float(np.linalg.norm(w))))
        if spec.log_every:
            first_step = (epoch - 1) * steps_per_epoch
            for i, loss in enumerate(result.batch_losses):
                if (first_step + i + 1) % spec.log_every == 0:
                    rows.append(row(epoch, "train", "loss", float(loss), step=first_step + i + 1))
        out.rows.extend(rows)
        out.manifest["epochs_done"] = epoch
        progress.epoch(epoch, train_loss, val_acc)

        if not np.all(np.isfinite(result.batch_losses)) or not np.isfinite(val_loss):
            status = "diverged"
            break
        one_class_streak = one_class_streak + 1 if classes_predicted == 1 else 0
        backend.end_epoch(val_loss)
    if status == "done" and one_class_streak >= spec.collapse_epochs:
        status = "collapsed"  # predicts a single class on the whole validation set
    progress.close(status)

    out.manifest.update(
        status=status,
        first_epoch_seconds=round(epoch_seconds[0], 4),
        median_epoch_seconds=round(statistics.median(epoch_seconds[1:]), 4) if len(epoch_seconds) > 1 else "",
    )


def _row_factory(spec: RunSpec, version: str, device: str):
    base = {
        "run_id": spec.run_id, "study": spec.study, "framework": spec.framework,
        "framework_version": version, "device": device, "model": spec.model, "dataset": spec.dataset,
        "optimizer": spec.optimizer_label, "schedule": spec.schedule_label, "lr": spec.lr,
        "batch_size": spec.batch_size, "seed": spec.seed,
    }

    def row(epoch, split, metric, value, step=""):
        return {**base, "epoch": epoch, "step": step, "split": split, "metric": metric, "value": value}

    return row


def _manifest_base(spec: RunSpec, threads: int) -> dict:
    return {
        "run_id": spec.run_id, "study": spec.study, "framework": spec.framework, "framework_version": "",
        "device": spec.device, "threads": threads, "model": spec.model, "dataset": spec.dataset,
        "optimizer": spec.optimizer_label, "schedule": spec.schedule_label, "lr": spec.lr,
        "batch_size": spec.batch_size, "seed": spec.seed, "epochs": spec.epochs, "epochs_done": 0,
        "status": "failed", "error": "", "wall_seconds": "", "first_epoch_seconds": "",
        "median_epoch_seconds": "", "python": sys.version.split()[0], "numpy": np.__version__,
        "platform": platform.platform(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "spec": spec.to_json(),
    }


def _one_line(e: BaseException) -> str:
    where = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
    at = f" at {os.path.basename(where.filename)}:{where.lineno}" if where else ""
    return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}{at}"
