"""The terminal during a sweep, drawn by the driver alone, from the epoch events its workers send.

On a terminal: one bar for the whole command (runs done of all, elapsed, time left) and a line per
run in flight (framework, config, epoch, loss, val accuracy). Off a terminal (a log, CI): one plain
line per finished run. Workers print nothing: what their frameworks print goes to each run's log
file (bench/worker_output.py), so nothing else writes to the terminal while the display is live.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass

from tqdm import tqdm


@dataclass(frozen=True)
class Epoch:
    """What a worker tells the driver after each epoch of a run."""

    run_id: str
    epoch: int
    loss: float
    val_acc: float
    seconds: float  # since the worker's previous epoch; its group's first: since the group arrived (setup included)


@dataclass(frozen=True)
class Work:
    """A run as time left counts it: its epochs over its training examples, of one kind: a framework, model, batch
    size (a smaller batch costs more per example: more steps) and whether its lr moves every step (set per step)."""

    framework: str
    model: str
    epochs: int
    examples: int
    batch: int
    per_step: bool = False

    @property
    def kind(self) -> tuple[str, str, int, bool]:
        return self.framework, self.model, self.batch, self.per_step


class TimeLeft:
    """Seconds left, from the epochs measured so far.

    A run costs its kind's setup (what a first epoch takes beyond a later one) plus its epochs times its
    examples at its kind's measured seconds per example (a mean: the members of a fused group share an
    epoch's seconds). A kind not measured yet is priced as the mean of those measured with the same
    framework and model, else the same model, else all. The ``jobs`` workers share the work, so the
    seconds left are the work's over ``jobs``."""

    def __init__(self, work: dict[str, Work], jobs: int = 1):
        self.work, self.jobs = work, max(1, jobs)
        self.done = dict.fromkeys(work, 0)  # epochs done, per run
        self.later: dict[tuple, list[float]] = defaultdict(list)  # seconds per example of epochs after the first
        self.first: dict[tuple, list[tuple[float, int]]] = defaultdict(list)  # (seconds, examples) of first epochs

    def epoch(self, event: Epoch) -> None:
        w = self.work.get(event.run_id)
        if w is None:
            return
        self.done[event.run_id] = event.epoch
        if event.epoch == 1:
            self.first[w.kind].append((event.seconds, w.examples))
        else:
            self.later[w.kind].append(event.seconds / w.examples)

    def finished(self, run_id: str) -> None:
        """The run ended (perhaps early, diverged or failed): nothing of it is left."""
        if run_id in self.work:
            self.done[run_id] = self.work[run_id].epochs

    def _measured(self, kind, per_example: float | None = None) -> tuple[float, float] | None:
        """(setup seconds, seconds per example) of a kind measured past its first epochs, or, given ``per_example``
        (a like kind's), of one measured in its first epochs alone; None before that."""
        if not self.first[kind] or (per_example is None and not self.later[kind]):
            return None
        per_example = statistics.mean(self.later[kind]) if self.later[kind] else per_example
        setup = statistics.mean(max(0.0, s - n * per_example) for s, n in self.first[kind])
        return setup, per_example

    def _price(self, kind) -> tuple[float, float] | None:
        """(setup seconds, seconds per example) of a kind: its own, else its like kinds' (the class docstring)."""
        measured = {k: m for k in list(self.first) if (m := self._measured(k))}
        if kind in measured:
            return measured[kind]
        framework, model = kind[:2]
        alike = ([m for k, m in measured.items() if k[:2] == (framework, model)]
                 or [m for k, m in measured.items() if k[1] == model] or list(measured.values()))
        if not alike:  # first epochs alone: their seconds per example hold the setup too
            firsts = [s / n for k in self.first for s, n in self.first[k]]
            return (0.0, statistics.mean(firsts)) if firsts else None
        per_example = statistics.mean(m[1] for m in alike)
        return self._measured(kind, per_example) or (statistics.mean(m[0] for m in alike), per_example)

    def seconds(self) -> float | None:
        """Seconds left, or None before any epoch is measured."""
        total = 0.0
        for run_id, w in self.work.items():
            left = w.epochs - self.done[run_id]
            if left <= 0:
                continue
            price = self._price(w.kind)
            if price is None:
                return None
            setup, per_example = price
            total += (setup if self.done[run_id] == 0 else 0.0) + left * w.examples * per_example
        return total / self.jobs


def clock(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m{seconds:02d}s"


class Display:
    """The whole command's progress, made with every run it will train (their ``Work`` and labels)."""

    def __init__(self, work: dict[str, Work], labels: dict[str, str], jobs: int = 1):
        self.labels, self.time_left = labels, TimeLeft(work, jobs)
        self.total, self.done, self.start = len(work), 0, time.perf_counter()
        self.val_acc: dict[str, float] = {}
        self.live = sys.stderr.isatty() and bool(work)
        self.bar = tqdm(total=self.total, file=sys.stderr, position=0, leave=True) if self.live else None
        self.runs: dict[str, tqdm] = {}
        self._draw()

    def status(self) -> str:
        left = self.time_left.seconds()
        eta = f", about {clock(left)} left" if left is not None and self.done < self.total else ""
        return f"{self.done} of {self.total} runs done, {clock(time.perf_counter() - self.start)}{eta}"

    def _draw(self) -> None:
        if self.bar is not None:
            self.bar.n, self.bar.bar_format = self.done, "bench |{bar:20}| " + self.status()
            self.bar.refresh()

    def say(self, line: str, file=None) -> None:
        """A line of the driver's own (to standard error unless ``file``), above the live display."""
        file = file or sys.stderr
        if self.live:
            tqdm.write(line, file=file)
        else:
            print(line, file=file, flush=True)

    def epoch(self, event: Epoch, epochs: int) -> None:
        self.time_left.epoch(event)
        self.val_acc[event.run_id] = event.val_acc
        if not self.live:
            return
        bar = self.runs.get(event.run_id)
        if bar is None:
            bar = self.runs[event.run_id] = tqdm(total=epochs, file=sys.stderr, leave=False)
        bar.n, bar.bar_format = event.epoch, (f"  {self.labels.get(event.run_id, event.run_id)} |{{bar:10}}| epoch "
                                              f"{{n}}/{{total}} loss {event.loss:.4f} val_acc {event.val_acc:.4f}")
        bar.refresh()
        self._draw()

    def finished(self, manifest: dict) -> None:
        run_id = manifest["run_id"]
        self.time_left.finished(run_id)
        self.done += 1
        bar = self.runs.pop(run_id, None)
        if bar is not None:
            bar.close()
        details = [f"val_acc {self.val_acc.pop(run_id):.4f}"] if run_id in self.val_acc else []
        if manifest.get("process_seconds") not in ("", None):
            details.append(f"{float(manifest['process_seconds']):.0f}s")
        error = f": {manifest['error']}" if manifest["status"] == "failed" else ""
        line = f"{self.labels.get(run_id, run_id)}: {manifest['status']}{error}" + (f" ({', '.join(details)})" if details else "")
        self.say(line if self.live else f"[{self.status()}] {line}")
        self._draw()

    def close(self) -> None:
        for bar in self.runs.values():
            bar.close()
        if self.bar is not None:
            self._draw()
            self.bar.close()


def label(spec) -> str:
    """A run as the terminal names it."""
    protocol = "" if spec.protocol == "fresh" else f" {spec.protocol}"
    return (f"{spec.study} {spec.framework} {spec.model} {spec.optimizer_label} {spec.schedule_label} "
            f"lr={spec.lr:g} seed={spec.seed}{protocol}")
