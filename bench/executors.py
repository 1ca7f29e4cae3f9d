"""Where runs execute: each in its own fresh process, so frameworks never share one.

A crash, an out-of-memory kill or a missing framework fails that run alone; the
driver, which alone writes results, records it as ``failed`` and goes on.

- local: ``jobs`` spawned processes at once, each with its share of the cores.
- ray: each run is a Ray task asking for its threads as CPUs (and a GPU with
  ``--device cuda``); a task's worker process serves that one run and exits.

The unit of work is a group of runs: one run, the stages of a warm-start chain (one
network trained at each lr in turn), or with ``--fused`` the runs that differ only in
lr or schedule, which a fused backend trains as one model.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import socket
from collections.abc import Iterator
from multiprocessing.connection import wait

from backends import FRAMEWORKS

from .errors import BenchError
from .runner import Outcome, _manifest_base, train_group
from .spec import RunSpec

EXECUTORS = ("local", "ray")


def groups(specs: list[RunSpec], fused: bool = False) -> list[list[RunSpec]]:
    """One group per run; the stages of a warm-start chain share one, in chain order; with
    ``fused``, the runs that differ only in lr or schedule share one."""
    together: dict[str, list[RunSpec]] = {}
    for spec in specs:
        if spec.chain:
            key = dataclasses.replace(spec, lr=spec.chain[0]).to_json()
        elif fused and FRAMEWORKS[spec.framework].fusable:
            key = dataclasses.replace(spec, lr=1.0, schedule={"name": "constant"}).to_json()
        else:
            key = spec.run_id
        together.setdefault(key, []).append(spec)
    return [sorted(group, key=lambda s: s.stage) for group in together.values()]


def _train_group(specs_json: list[str], data_dir, threads: int, verify: bool = True) -> list[tuple[list, dict]]:
    outcomes = train_group([RunSpec.from_json(s) for s in specs_json], data_dir, threads, verify)
    return [(o.rows, o.manifest) for o in outcomes]


def _worker(specs_json: list[str], data_dir, threads: int, conn) -> None:
    conn.send(_train_group(specs_json, data_dir, threads, verify=False))  # the driver checked these files
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


def _failed(group: list[RunSpec], threads: int, error: str) -> list[Outcome]:
    outcomes = [Outcome([], _manifest_base(spec, threads, fused=len(group))) for spec in group]
    for outcome in outcomes:
        outcome.manifest["error"] = error
    return outcomes


def run_local(work: list[list[RunSpec]], data_dir=None, threads: int | None = None, jobs: int = 1) -> Iterator[Outcome]:
    """Run groups in up to ``jobs`` spawned processes at once; yield outcomes as they finish."""
    threads = thread_budget(jobs, threads)
    ctx = mp.get_context("spawn")
    waiting = list(reversed(work))
    running: dict = {}  # receiving end of the pipe -> (process, group)
    try:
        while waiting or running:
            while waiting and len(running) < jobs:
                group = waiting.pop()
                receive, send = ctx.Pipe(duplex=False)
                process = ctx.Process(target=_worker, args=([s.to_json() for s in group], data_dir, threads, send))
                process.start()
                send.close()
                running[receive] = (process, group)
            for receive in wait(list(running)):
                process, group = running.pop(receive)
                try:
                    outcomes = [Outcome(*o) for o in receive.recv()]
                except EOFError:  # the process died before answering
                    process.join()
                    outcomes = _failed(group, threads, f"run process exited with code {process.exitcode} before finishing")
                process.join()
                yield from outcomes
    finally:  # the driver stopped early (an error, Ctrl-C): no orphaned runs
        for process, _ in running.values():
            process.kill()
            process.join()


def check_ray_address(address: str, timeout: float = 5.0) -> None:
    """A ``host:port`` (or ``ray://host:port``) that does not accept a connection: one line, before any run."""
    if address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise BenchError(f"--ray-address {address!r} is not HOST:PORT (or ray://HOST:PORT, or auto)")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise BenchError(f"Ray address {address} does not answer ({e.strerror or e}): "
                         f"start the cluster with `ray start --head` there, or drop --ray-address to run locally") from None


def connect_ray(address: str | None):
    try:
        import ray
    except ImportError:
        raise BenchError('--executor ray needs Ray: pip install -e ".[ray]"') from None
    if ray.is_initialized():  # a Ray the caller started (tests, notebooks)
        return ray
    if address:
        check_ray_address(address)
    try:
        ray.init(address=address, log_to_driver=True)
    except ConnectionError as e:
        raise BenchError(f"cannot join Ray at {address}: {e}: start it with `ray start --head`") from None
    return ray


def run_ray(work: list[list[RunSpec]], data_dir=None, threads: int | None = None,
            address: str | None = None) -> Iterator[Outcome]:
    """Run each group as a Ray task; yield outcomes on the driver as they finish.

    Each task asks for ``threads`` CPUs (default 1) and, for ``--device cuda``, one GPU;
    Ray runs as many at once as the cluster fits. ``max_calls=1`` gives every run a
    fresh worker process, as frameworks must not share one; ``max_retries=0`` because
    a run that kills its worker is recorded failed, not repeated.
    """
    ray = connect_ray(address)
    threads = threads or 1
    remote = ray.remote(max_calls=1, max_retries=0)(_train_group)
    pending = {}
    for group in work:
        task = remote.options(num_cpus=threads, num_gpus=1 if group[0].device == "cuda" else 0,
                              name=f"lrbench:{group[0].run_id}")
        pending[task.remote([s.to_json() for s in group], data_dir and str(data_dir), threads)] = group
    try:
        while pending:
            [ref], _ = ray.wait(list(pending), num_returns=1)
            group = pending.pop(ref)
            try:
                outcomes = [Outcome(*o) for o in ray.get(ref)]
            except ray.exceptions.RayError as e:  # the worker died or the task could not run
                outcomes = _failed(group, threads, f"Ray task failed: {type(e).__name__}: {str(e).strip().splitlines()[0]}")
            yield from outcomes
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
