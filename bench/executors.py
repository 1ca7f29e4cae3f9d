"""Where runs execute: each in its own fresh process, so frameworks never share one.

A crash, an out-of-memory kill or a missing framework fails that run alone; the
driver, which alone writes results, records it as ``failed`` and goes on. ``jobs``
processes run at once, each with its share of the cores as its thread budget.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Iterator
from multiprocessing.connection import wait

from .runner import Outcome, _manifest_base, train
from .spec import RunSpec


def _worker(spec_json: str, data_dir, threads: int, conn) -> None:
    outcome = train(RunSpec.from_json(spec_json), data_dir, threads)
    conn.send((outcome.rows, outcome.manifest))
    conn.close()


def _probe(framework: str, device: str, conn) -> None:
    from backends import load_backend

    try:
        load_backend(framework).setup(device, 1, 0)
        conn.send("")
    except Exception as e:  # noqa: BLE001 (reported to the driver as one line)
        conn.send(str(e))


def check_device(frameworks: list[str], device: str) -> str | None:
    """Whether every framework can use ``device``, asked in a process of its own; the first problem or None."""
    ctx = mp.get_context("spawn")
    for framework in frameworks:
        receive, send = ctx.Pipe(duplex=False)
        process = ctx.Process(target=_probe, args=(framework, device, send))
        process.start()
        send.close()
        try:
            problem = receive.recv()
        except EOFError:
            problem = f"{framework} could not start on {device}"
        process.join()
        if problem:
            return problem
    return None


def thread_budget(jobs: int, threads: int | None = None) -> int:
    """Threads per run so that jobs x threads does not exceed the cores."""
    return threads or max(1, (os.cpu_count() or 1) // jobs)


def run_local(specs: list[RunSpec], data_dir=None, threads: int | None = None, jobs: int = 1) -> Iterator[Outcome]:
    """Run specs in up to ``jobs`` spawned processes at once; yield outcomes as they finish."""
    threads = thread_budget(jobs, threads)
    ctx = mp.get_context("spawn")
    waiting = list(reversed(specs))
    running: dict = {}  # receiving end of the pipe -> (process, spec)
    while waiting or running:
        while waiting and len(running) < jobs:
            spec = waiting.pop()
            receive, send = ctx.Pipe(duplex=False)
            process = ctx.Process(target=_worker, args=(spec.to_json(), data_dir, threads, send))
            process.start()
            send.close()
            running[receive] = (process, spec)
        for receive in wait(list(running)):
            process, spec = running.pop(receive)
            try:
                rows, manifest = receive.recv()
            except EOFError:  # the process died before answering
                process.join()
                rows, manifest = [], _manifest_base(spec, threads)
                manifest["error"] = f"run process exited with code {process.exitcode} before finishing"
            process.join()
            yield Outcome(rows, manifest)
