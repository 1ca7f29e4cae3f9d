"""`bench perf`: what lrbench's runner costs, against the loop a user would write by hand.

For each framework, in a process of its own, LeNet trains on MNIST (60000 images,
batch 128, SGD momentum 0.9) several ways, each for one warm-up epoch and then
``epochs`` timed ones, device-synchronised, the ways taking turns for ``rounds`` rounds:

- runner:  ``bench.runner.train`` through the framework's backend, exactly as a study runs;
- then each loop of ``backends/<adapter>_baselines.py`` (``BASELINES``), hand-written in that framework over
  in-memory arrays and sharing nothing with the backend: ``hand`` everywhere (Keras:
  ``model.fit`` with ``jit_compile=True``; torch: in the backend's channels-last layout,
  so runner / hand is the harness's own cost); for torch also ``hand-contiguous`` (the
  same loop as most users write it) and ``dataloader``, the seed experiments' style: a
  ``DataLoader`` over a ``TensorDataset`` with a per-batch ``.item()``.

All run in the same process with the thread count the backend chose, so the ratios
compare code, not machines. The median epoch is reported.
"""

from __future__ import annotations

import platform
import statistics
import sys
from collections import defaultdict

from tqdm import tqdm

from backends import load_baselines

from .data import load_dataset
from .executors import in_own_process
from .runner import train
from .spec import RunSpec, optimizer_params
from .timing import BATCH, LR, MOMENTUM


def measure(framework: str, device: str, epochs: int, rounds: int, data_dir, threads: int | None,
            train_size: int | None = None, tell=lambda done_of: None) -> list[dict]:
    """Time the ways for one framework, in rounds that take turns; runs in a process of its own, and
    ``tell``s (ways timed, of all) after each way.

    A slow spell of a shared machine lasts minutes: taking turns spreads it over every way
    instead of charging it to one, and the median is over every round's timed epochs.
    """
    spec = RunSpec(study="perf", framework=framework, model="lenet", dataset="mnist",
                   optimizer=optimizer_params({"name": "sgd", "momentum": MOMENTUM}), schedule={"name": "constant"},
                   lr=LR, batch_size=BATCH, epochs=1 + epochs, seed=0, device=device, train_size=train_size)
    data = load_dataset("mnist", data_dir, train_size=train_size)
    firsts, timed = defaultdict(list), defaultdict(list)
    baselines = load_baselines(framework)
    total = rounds * (1 + len(baselines))
    for k in range(rounds):
        outcome = train(spec, data_dir, threads)
        m = outcome.manifest
        if m["status"] != "done":
            raise RuntimeError(f"{framework}: the runner's run {m['status']}: {m['error']}")
        tell((k * total // rounds + 1, total))
        raw = "cuda" if m["device"].startswith("cuda") else "cpu"
        ways = {"runner": [r["value"] for r in outcome.rows if r["metric"] == "epoch_seconds"]}
        for i, (way, loop) in enumerate(baselines.items()):
            ways[way] = loop(data.train_x, data.train_y, 1 + epochs, raw)
            tell((k * total // rounds + 2 + i, total))
        for way, seconds in ways.items():
            firsts[way].append(seconds[0])
            timed[way] += seconds[1:]
    return [{"framework": framework, "framework_version": m["framework_version"], "device": m["device"],
             "threads": m["threads"], "way": way, "rounds": rounds, "epochs_timed": len(timed[way]),
             "median_epoch_seconds": round(statistics.median(timed[way]), 4),
             "first_epoch_seconds": round(statistics.median(firsts[way]), 4),
             "python": m["python"], "platform": platform.platform()}
            for way in timed]


def run_perf(frameworks: list[str], device: str, epochs: int, rounds: int = 2, data_dir=None,
             threads: int | None = None, train_size: int | None = None) -> list[dict]:
    rows = []
    for framework in frameworks:  # one after the other: each has the machine to itself
        with tqdm(desc=f"{framework}: ways timed", unit="way", file=sys.stderr, disable=not sys.stderr.isatty(),
                  bar_format="{desc} |{bar:20}| {n}/{total}, {elapsed}, about {remaining} left") as bar:
            def shown(done_of, bar=bar):
                bar.total = done_of[1]
                bar.update(done_of[0] - bar.n)

            rows += in_own_process(f"{framework}'s timing", measure, framework, device, epochs, rounds, data_dir,
                                   threads, train_size, on_event=shown)
        print(f"{framework}: timed", file=sys.stderr, flush=True)
    by = {(r["framework"], r["way"]): r["median_epoch_seconds"] for r in rows}
    for r in rows:
        r["runner_over_hand"] = round(by[(r["framework"], "runner")] / by[(r["framework"], "hand")], 3)
        r["over_runner"] = round(r["median_epoch_seconds"] / by[(r["framework"], "runner")], 3)
    return rows
