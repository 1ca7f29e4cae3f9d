"""The sweep's terminal: time left from the epochs measured so far, one plain line per finished run off a
terminal, and the order that measures every framework and model early."""

import sys
from pathlib import Path

import pandas as pd
import pytest

from bench import progress
from bench.executors import _next
from bench.progress import Display, Epoch, TimeLeft, Work
from bench.spec import load_study

pytestmark = pytest.mark.env_core


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_time_left_prices_each_framework_and_model_by_its_own_epochs():
    work = {"t1": Work("torch", "lenet", 3, 1000, 64), "t2": Work("torch", "lenet", 2, 500, 64),
            "k1": Work("keras", "lenet", 2, 1000, 64), "m1": Work("keras", "mlp", 2, 1000, 64)}
    left = TimeLeft(work, jobs=1)
    assert left.seconds() is None  # nothing measured: no guess
    left.epoch(Epoch("t1", 1, 2.0, 0.5, 5.0))  # the first epoch: 3 s of setup on top of the 2 s an epoch takes
    left.epoch(Epoch("t1", 2, 1.0, 0.7, 2.0))  # 2 s per 1000 examples
    # t1: 1 epoch left (2 s); t2: setup 3 + 2 x 1 s; keras is priced as torch's lenet until it runs
    assert left.seconds() == pytest.approx(2 + (3 + 2) + (3 + 4) + (3 + 4))
    left.epoch(Epoch("k1", 1, 2.0, 0.5, 10.0))
    left.epoch(Epoch("k1", 2, 2.0, 0.5, 6.0))  # keras lenet: 6 s per 1000 examples, 4 s of setup
    left.finished("k1")
    # the keras MLP has no epoch yet: priced as the mean of the lenets measured, (3, 2) and (4, 6)
    assert left.seconds() == pytest.approx(2 + (3 + 2) + (3.5 + 2 * 4))
    assert TimeLeft(work, jobs=2).seconds() is None
    left.jobs = 2
    assert left.seconds() == pytest.approx((2 + (3 + 2) + (3.5 + 2 * 4)) / 2)  # two workers share the work


def test_a_run_that_ends_early_leaves_nothing_to_do():
    left = TimeLeft({"a": Work("torch", "mlp", 10, 100, 10)})
    left.epoch(Epoch("a", 1, float("nan"), 0.1, 1.0))
    left.finished("a")  # diverged at its first epoch
    assert left.seconds() == 0


def test_off_a_terminal_one_plain_line_per_finished_run(monkeypatch, capsys):
    clock = Clock()
    monkeypatch.setattr(progress.time, "perf_counter", clock)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    display = Display({"a": Work("torch", "mlp", 2, 100, 10), "b": Work("torch", "mlp", 2, 100, 10)},
                      {"a": "s torch mlp lr=0.1", "b": "s torch mlp lr=0.01"})
    for epoch in (1, 2):
        clock.now += 30
        display.epoch(Epoch("a", epoch, 0.5, 0.9, 30.0), 2)
    display.finished({"run_id": "a", "status": "done", "process_seconds": 61.0})
    clock.now += 5
    display.finished({"run_id": "b", "status": "failed", "error": "RuntimeError: boom", "process_seconds": 5.0})
    display.close()
    assert capsys.readouterr().err.splitlines() == [
        "[1 of 2 runs done, 1m00s, about 1m00s left] s torch mlp lr=0.1: done (val_acc 0.9000, 61s)",
        "[2 of 2 runs done, 1m05s] s torch mlp lr=0.01: failed: RuntimeError: boom (5s)"]


def test_the_first_runs_measure_every_framework_and_model():
    """With two workers and three frameworks, the first groups started are one of each framework and model (the
    study's own order would run every torch run first and price Paddle's from torch's); then a free worker keeps
    its framework."""
    specs = load_study("digits").runs(["torch", "keras", "paddle"])  # 2 models x 2 lrs x 2 schedules each
    waiting, started, order = [[s] for s in specs], set(), []
    idle = set()
    while waiting:
        group = waiting.pop(_next(waiting, idle, started))
        started.add((group[0].framework, group[0].model))
        order.append((group[0].framework, group[0].model))
        idle = {group[0].framework}  # the worker that ran it is free again
    assert len(set(order[:6])) == 6
    switches = sum(a[0] != b[0] for a, b in zip(order[6:], order[7:]))
    assert switches <= 2, order  # each framework's other runs one after another


RECORDED = Path(__file__).parent / "data" / "quick_sweep_timings.csv"


def replay(timings: pd.DataFrame, jobs: int) -> list[tuple[int, float | None, float]]:
    """The recorded runs on ``jobs`` workers, each taking the next run in the recorded order when it is free, their
    epochs told to a TimeLeft as they end: (runs done, its seconds left, the true seconds left) after each run."""
    free, events, runs = [0.0] * jobs, [], list(timings.groupby("order", sort=True))
    for _, run in runs:
        k = min(range(jobs), key=free.__getitem__)
        for r in run.itertuples():
            free[k] += r.seconds
            events.append((free[k], r.run_id, r.epoch, r.seconds))
    end = max(free)
    work = {run["run_id"].iloc[0]: Work(run["framework"].iloc[0], run["model"].iloc[0], len(run), run["examples"].iloc[0],
                                        run["batch"].iloc[0], run["per_step"].iloc[0]) for _, run in runs}
    left, done, out = TimeLeft(work, jobs), 0, []
    for t, run_id, epoch, seconds in sorted(events):
        left.epoch(Epoch(run_id, epoch, 0.0, 0.0, seconds))
        if epoch == work[run_id].epochs:
            left.finished(run_id)
            done += 1
            out.append((done, left.seconds(), end - t))
    return out


def test_time_left_is_within_30_percent_of_the_truth_after_the_first_runs():
    """Replayed on the timings of a real `bench all --quick --jobs 2` in torch, Keras, Paddle and JAX on the 2-core
    CPU (124 runs of five studies: two datasets, both models, batches of 32 to 128, per-step schedules;
    tests/data/quick_sweep_timings.csv: each run's epoch and eval seconds, its first epoch with its import, data
    and build), in the order the command started them: from the tenth run on, time left is within 30% of the time
    the replay still took. (The real command's own time left: docs/commands.md.)"""
    timings = pd.read_csv(RECORDED)
    for jobs in (1, 2):
        told = replay(timings, jobs)
        off = {done: estimate / truth - 1 for done, estimate, truth in told if truth > 60}
        assert all(abs(off[done]) <= 0.30 for done in off if done >= 10), {d: round(o, 2) for d, o in off.items()}
