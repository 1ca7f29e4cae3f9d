"""Where runs execute: each in its own fresh process, so frameworks never share one.

A crash, an out-of-memory kill or a missing framework fails that run alone; the
driver, which alone writes results, records it as ``failed`` and goes on.

- local: ``jobs`` spawned processes at once, each with its share of the cores.
- ray: each run is a Ray task asking for its threads as CPUs (and a GPU with
  ``--device cuda``); a task's worker process serves that one run and exits.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import socket
from collections.abc import Iterator
from multiprocessing.connection import wait

from .errors import BenchError
from .runner import Outcome, _manifest_base, train
from .spec import RunSpec

EXECUTORS = ("local", "ray")


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


def _failed(spec: RunSpec, threads: int, error: str) -> Outcome:
    manifest = _manifest_base(spec, threads)
    manifest["error"] = error
    return Outcome([], manifest)


def run_local(specs: list[RunSpec], data_dir=None, threads: int | None = None, jobs: int = 1) -> Iterator[Outcome]:
    """Run specs in up to ``jobs`` spawned processes at once; yield outcomes as they finish."""
    threads = thread_budget(jobs, threads)
    ctx = mp.get_context("spawn")
    waiting = list(reversed(specs))
    running: dict = {}  # receiving end of the pipe -> (process, spec)
    try:
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
                    outcome = Outcome(*receive.recv())
                except EOFError:  # the process died before answering
                    process.join()
                    outcome = _failed(spec, threads, f"run process exited with code {process.exitcode} before finishing")
                process.join()
                yield outcome
    finally:  # the driver stopped early (an error, Ctrl-C): no orphaned runs
        for process, _ in running.values():
            process.kill()
            process.join()


def _ray_train(spec_json: str, data_dir, threads: int):
    outcome = train(RunSpec.from_json(spec_json), data_dir, threads)
    return outcome.rows, outcome.manifest


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


def run_ray(specs: list[RunSpec], data_dir=None, threads: int | None = None, address: str | None = None) -> Iterator[Outcome]:
    """Run each spec as a Ray task; yield outcomes on the driver as they finish.

    Each task asks for ``threads`` CPUs (default 1) and, for ``--device cuda``, one GPU;
    Ray runs as many at once as the cluster fits. ``max_calls=1`` gives every run a
    fresh worker process, as frameworks must not share one; ``max_retries=0`` because
    a run that kills its worker is recorded failed, not repeated.
    """
    ray = connect_ray(address)
    threads = threads or 1
    remote = ray.remote(max_calls=1, max_retries=0)(_ray_train)
    pending = {}
    for spec in specs:
        task = remote.options(num_cpus=threads, num_gpus=1 if spec.device == "cuda" else 0,
                              name=f"lrbench:{spec.run_id}")
        pending[task.remote(spec.to_json(), data_dir and str(data_dir), threads)] = spec
    try:
        while pending:
            [ref], _ = ray.wait(list(pending), num_returns=1)
            spec = pending.pop(ref)
            try:
                yield Outcome(*ray.get(ref))
            except ray.exceptions.RayError as e:  # the worker died or the task could not run
                yield _failed(spec, threads, f"Ray task failed: {type(e).__name__}: {str(e).strip().splitlines()[0]}")
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
