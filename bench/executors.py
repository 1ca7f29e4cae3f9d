"""Where runs execute: each in its own fresh process, so frameworks never share one.

A crash, an out-of-memory kill or a missing framework fails that run alone; the
driver, which alone writes results, records it as ``failed`` and goes on.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Iterator

from .runner import Outcome, _manifest_base, train
from .spec import RunSpec


def _worker(spec_json: str, data_dir, threads: int, conn) -> None:
    outcome = train(RunSpec.from_json(spec_json), data_dir, threads)
    conn.send((outcome.rows, outcome.manifest))
    conn.close()


def run_local(specs: list[RunSpec], data_dir=None, threads: int | None = None) -> Iterator[Outcome]:
    """Run specs one after another, each in a spawned process; yield outcomes as they finish."""
    threads = threads or os.cpu_count() or 1
    ctx = mp.get_context("spawn")
    for spec in specs:
        receive, send = ctx.Pipe(duplex=False)
        process = ctx.Process(target=_worker, args=(spec.to_json(), data_dir, threads, send))
        process.start()
        send.close()
        try:
            rows, manifest = receive.recv()
        except EOFError:  # the process died before answering
            rows, manifest = [], _manifest_base(spec, threads)
            process.join()
            manifest["error"] = f"run process exited with code {process.exitcode} before finishing"
        process.join()
        yield Outcome(rows, manifest)
