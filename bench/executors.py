"""Where runs execute: in processes of their own, one framework per process, never the driver's.

A crash, an out-of-memory kill or a missing framework fails the run in flight alone;
the driver, which alone writes results, records it as ``failed`` and goes on.

- local: up to ``jobs`` worker processes at once, each with its share of the cores. A
  worker imports one framework and trains that framework's runs one after another, each
  from a fresh backend (its own seeds, weights, model and optimizer), so a sweep pays for
  the process and the import once per worker instead of once per run; a worker that dies
  takes only its run in flight with it, and the next run gets a new worker.
  ``fresh=True`` (``--fresh-process``) starts a process for every run instead.
- ray: each run is a Ray task asking for its threads as CPUs (and a GPU with
  ``--device cuda``); a task's worker process serves that one run and exits.

The unit of work is a group of runs: one run, the stages of a warm-start chain (one
network trained at each lr in turn), or with ``--fused`` the runs that differ only in
lr or schedule, which a fused backend trains as one model. A local worker answers with
each outcome as soon as it is final, so the driver keeps a chain's finished stages (and
the network each left) when the sweep is stopped; a Ray task returns its group at its end.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator
from multiprocessing.connection import wait

from backends import FRAMEWORKS

from .errors import BenchError
from .lifeline import follow_parent, guard_descendants
from .progress import Epoch
from .runner import Outcome, manifest_base, stream_group
from .schedules import lr_moves_per_step
from .spec import ChainStart, RunSpec
from .worker_output import WorkerLog, capture, flush, with_log

EXECUTORS = ("local", "ray")


def groups(specs: list[RunSpec], fused: bool = False) -> list[list[RunSpec]]:
    """One group per run; the stages of a warm-start chain share one, in chain order; with
    ``fused``, the runs that differ only in lr or schedule share one. Longest first (by epochs): a
    resumed sweep whose longest chain started last would end with that chain running alone."""
    together: dict[str, list[RunSpec]] = {}
    for spec in specs:
        if spec.chain:
            key = spec.stage_spec(0).to_json()
        elif fused and FRAMEWORKS[spec.framework].fusable and not lr_moves_per_step(spec.schedule):  # a per-step one trains alone
            key = dataclasses.replace(spec, lr=1.0, schedule={"name": "constant"}).to_json()
        else:
            key = spec.run_id
        together.setdefault(key, []).append(spec)
    work = [sorted(group, key=lambda s: s.stage) for group in together.values()]
    return sorted(work, key=lambda group: -sum(s.epochs for s in group))


def _stream_group(specs_json: list[str], data_dir, threads: int, start: ChainStart | None = None,
                  verify: bool = True, tell=None) -> Iterator[tuple[list, dict, dict | None]]:
    for o in stream_group([RunSpec.from_json(s) for s in specs_json], data_dir, threads, verify, start, tell):
        flush()
        yield o.rows, o.manifest, o.weights


def _serve(conn, data_dir, threads: int, log: int) -> None:
    """A worker's life: train each group it is sent, tell each epoch and answer with each outcome as it is
    final; ``None`` ends it. What its framework prints goes to ``log``.

    Each outcome's manifest says the how-manieth group of its process it was (``process_run``:
    1 paid for the process and the framework's import)."""
    follow_parent()
    capture(log)
    served = 0
    try:
        while (work := conn.recv()) is not None:
            served += 1
            specs_json, start = work
            for outcome in _stream_group(specs_json, data_dir, threads, start, verify=False, tell=_Teller(conn)):
                outcome[1]["process_run"] = served
                conn.send(("outcome", outcome))
    except (EOFError, BrokenPipeError, ConnectionResetError):  # the driver stopped: it keeps what it has
        pass
    conn.close()


class _Teller:
    """A worker's epochs, sent to the driver, each with the seconds since the group's previous epoch (the first:
    since the group arrived, its framework's import, data and build included): what time left is priced from."""

    def __init__(self, conn):
        self.conn, self.last = conn, time.perf_counter()

    def __call__(self, run_id: str, epoch: int, loss: float, val_acc: float) -> None:
        now = time.perf_counter()
        self.conn.send(("epoch", Epoch(run_id, epoch, loss, val_acc, now - self.last)))
        self.last = now


class _Worker:
    """A spawned process that serves groups of one framework, one group at a time."""

    def __init__(self, ctx, framework: str, data_dir, threads: int):
        self.framework, self.group, self.left, self.since = framework, [], set(), 0.0
        self.log = WorkerLog()
        self.conn, theirs = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(theirs, data_dir, threads, self.log.for_child()), daemon=True)
        self.process.start()
        theirs.close()

    def send(self, group: list[RunSpec], start: ChainStart | None = None) -> None:
        self.group, self.left, self.since = group, {s.run_id for s in group}, time.perf_counter()
        self.log.mark()
        self.conn.send(([s.to_json() for s in group], start))

    @property
    def busy(self) -> bool:
        """Its group has outcomes still to come."""
        return bool(self.left)

    def receive(self, threads: int) -> list[Outcome] | Epoch:
        """The group's next epoch or outcome; ``failed`` outcomes for all it still owes when the process died
        before answering. Each outcome carries what the framework printed during its group."""
        try:
            kind, message = self.conn.recv()
        except (EOFError, ConnectionResetError):  # a process killed mid-send resets the pipe instead of closing it
            self.process.join()
            owed = [s for s in self.group if s.run_id in self.left]
            self.left = set()
            log = self.log.text()
            return _failed(owed, threads, with_log(f"run process exited with code {self.process.exitcode} before "
                                                   f"finishing", log), log)
        if kind == "epoch":
            return message
        outcome = Outcome(*message, log=self.log.text())
        if outcome.manifest["status"] == "failed":
            outcome.manifest["error"] = with_log(outcome.manifest["error"], outcome.log)
        self.left.discard(outcome.manifest["run_id"])
        now = time.perf_counter()
        outcome.manifest["process_seconds"] = round(now - self.since, 3)  # as the driver saw it: the run and its passage
        if outcome.manifest["fused"] == 1:  # a fused group's members share its seconds; a chain's next stage starts now
            self.since = now
        return [outcome]

    def stop(self) -> None:
        """Let the process end by itself (Paddle reports a terminate as a crash)."""
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.process.join(timeout=30)
        self.kill()

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.log.close()


def in_own_process(what: str, fn, *args, on_event=None):
    """``fn(*args)`` in a spawned process of its own (one framework per process), its result returned here.

    What goes wrong there is one line here (a BenchError naming ``what``, with the last lines the framework
    printed): an error raised in it, or the process dying (a crash, an out-of-memory kill). ``on_event``:
    ``fn`` is called with a last argument that sends what it passes to ``on_event`` here (progress). The
    process exits by itself when done (Paddle reports a terminate as a crash); when the driver stops early
    (Ctrl-C, SIGTERM) it is killed at once."""
    ctx = mp.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    log = WorkerLog()
    process = ctx.Process(target=_call, args=(send, fn, args, log.for_child(), on_event is not None), daemon=True)
    process.start()
    send.close()
    try:
        while (answer := receive.recv())[0] == "event":
            on_event(answer[1])
        kind, value = answer
    except (EOFError, ConnectionResetError):
        process.join()
        raise BenchError(with_log(f"{what}: its process died with exit code {process.exitcode} (a crash or an "
                                  f"out-of-memory kill)", log.text())) from None
    except BaseException:
        process.kill()
        process.join()
        raise
    finally:
        text = log.text()
        log.close()
    process.join()
    if kind == "bench":  # a BenchError's own line, as it is
        raise BenchError(value)
    if kind == "error":
        raise BenchError(with_log(f"{what} failed: {value}", text))
    return value


def _call(conn, fn, args, log: int, events: bool) -> None:
    follow_parent()
    capture(log)
    try:
        answer = ("ok", fn(*args, lambda event: conn.send(("event", event))) if events else fn(*args))
    except BenchError as e:
        answer = ("bench", str(e))
    except Exception as e:  # one line, as every failure the driver reports
        first = _first_line(e)
        answer = ("error", f"{type(e).__name__}{': ' + first if first else ''}")
    flush()
    conn.send(answer)
    conn.close()


def _probe(framework: str, device: str) -> None:
    from backends import load_backend

    load_backend(framework).setup(device, 1, 0)


def check_device(frameworks: list[str], device: str) -> None:
    """Every framework can use ``device``, asked in a process of its own; else a BenchError naming the first problem."""
    for framework in frameworks:
        in_own_process(f"{framework} on {device}", _probe, framework, device)


def thread_budget(jobs: int, threads: int | None = None) -> int:
    """Threads per run so that jobs x threads does not exceed the cores."""
    return threads or max(1, (os.cpu_count() or 1) // jobs)


def _failed(group: list[RunSpec], threads: int, error: str, log: str = "") -> list[Outcome]:
    outcomes = [Outcome([], manifest_base(spec, threads, fused=len(group)), log=log) for spec in group]
    for outcome in outcomes:
        outcome.manifest["error"] = error
    return outcomes


def run_local(work: list[list[RunSpec]], data_dir=None, threads: int | None = None, jobs: int = 1,
              fresh: bool = False, starts: dict | None = None, on_epoch=None) -> Iterator[Outcome]:
    """Run groups on up to ``jobs`` workers at once; yield outcomes as they finish, and pass each run's
    epochs to ``on_epoch`` as they end.

    A free worker takes the next group of its framework; a group of another framework gets a
    new worker, in place of an idle one when ``jobs`` are alive. ``fresh``: a new worker for
    every group (the process of each run serves that run alone). ``starts``: the ``ChainStart``
    of a resumed chain, by the run_id of its group's first run.
    """
    threads, starts = thread_budget(jobs, threads), starts or {}
    ctx = mp.get_context("spawn")
    waiting = list(work)
    started: set[tuple[str, str]] = set()
    idle: list[_Worker] = []
    busy: dict = {}  # connection -> worker
    try:
        while waiting or busy:
            while waiting and len(busy) < jobs:
                group = waiting.pop(_next(waiting, {w.framework for w in idle}, started))
                started.add(_kind(group))
                worker = next((w for w in idle if w.framework == group[0].framework), None)
                if worker:
                    idle.remove(worker)
                else:
                    if len(idle) + len(busy) >= jobs:
                        idle.pop(0).stop()
                    worker = _Worker(ctx, group[0].framework, data_dir, threads)
                worker.send(group, starts.get(group[0].run_id))
                busy[worker.conn] = worker
            for conn in wait(list(busy)):
                worker = busy[conn]
                outcomes = worker.receive(threads)
                if isinstance(outcomes, Epoch):
                    if on_epoch:
                        on_epoch(outcomes)
                    continue
                if not worker.busy:  # its group is done
                    del busy[conn]
                    if fresh or not worker.process.is_alive() or outcomes[-1].manifest["status"] == "failed":
                        worker.stop()  # a failed run may have left its framework in a bad state: start clean
                    else:
                        idle.append(worker)
                yield from outcomes
    except BaseException:  # the driver stopped early (an error, Ctrl-C, SIGTERM): no orphaned runs
        for worker in [*busy.values(), *idle]:
            worker.kill()
        raise
    for worker in idle:
        worker.stop()


def _kind(group: list[RunSpec]) -> tuple[str, str]:
    return group[0].framework, group[0].model


def _next(waiting: list[list[RunSpec]], idle: set[str], started: set[tuple[str, str]]) -> int:
    """The waiting group to start next: first one of each framework and model, so that time left is measured
    for every kind early; otherwise one an idle worker's framework can take, then the first."""
    candidates = [i for i, g in enumerate(waiting) if _kind(g) not in started] or range(len(waiting))
    return next((i for i in candidates if waiting[i][0].framework in idle), candidates[0])


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
    ours = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGHUP)}
    try:
        ray.init(address=address, log_to_driver=True)
        if not address:  # a Ray of our own on this machine: it must not outlive this driver
            guard_descendants()
    except ConnectionError as e:
        raise BenchError(f"cannot join Ray at {address}: {e}: start it with `ray start --head`") from None
    finally:  # ray.init takes SIGTERM (Python's sys.exit(1), then its C++ stack dump): the driver's stop is ours
        for signum, handler in ours.items():
            signal.signal(signum, handler)
    return ray


LOST_NODE_RETRIES = 3  # times a group is sent again when the node it ran on died (a worker crash is not retried)


def _train_on_ray(specs_json: list[str], data_dir, threads: int, start: ChainStart | None = None) -> list[tuple]:
    """A group as a Ray task, its outcomes returned together at its end with what the framework printed; each
    manifest names the node it ran on (host and Ray node id)."""
    import ray

    node = f"{socket.gethostname()} (Ray node {ray.get_runtime_context().get_node_id()[:12]})"
    log = WorkerLog()  # the task's process serves this group alone (max_calls=1)
    capture(log.fd)
    outcomes = list(_stream_group(specs_json, data_dir, threads, start))
    text = log.text()
    log.close()
    for _, manifest, _ in outcomes:
        manifest["node"] = node
        if manifest["status"] == "failed":
            manifest["error"] = with_log(manifest["error"], text)
    return [(*outcome, text) for outcome in outcomes]


def run_ray(work: list[list[RunSpec]], data_dir=None, threads: int | None = None,
            address: str | None = None, starts: dict | None = None) -> Iterator[Outcome]:
    """Run each group as a Ray task; yield outcomes on the driver as they finish.

    Each task asks for ``threads`` CPUs (default 1) and, for ``--device cuda``, one GPU;
    Ray runs as many at once as the cluster fits. ``max_calls=1`` gives every run a
    fresh worker process, as frameworks must not share one; ``max_retries=0`` because
    a run that kills its worker is recorded failed, not repeated. A group whose node
    died (removed, preempted, its raylet killed) is sent again, up to ``LOST_NODE_RETRIES``
    times, to the nodes left: the run did nothing wrong.
    """
    ray = connect_ray(address)
    threads, starts = threads or 1, starts or {}
    remote = ray.remote(max_calls=1, max_retries=0)(_train_on_ray)

    def submit(group: list[RunSpec]):
        task = remote.options(num_cpus=threads, num_gpus=1 if group[0].device == "cuda" else 0,
                              name=f"lrbench:{group[0].run_id}")
        return task.remote([s.to_json() for s in group], data_dir and str(data_dir), threads, starts.get(group[0].run_id))

    pending = {submit(group): (group, 0) for group in work}
    try:
        while pending:
            [ref], _ = ray.wait(list(pending), num_returns=1)
            group, lost = pending.pop(ref)
            try:
                outcomes = [Outcome(*o) for o in ray.get(ref)]
            except ray.exceptions.NodeDiedError as e:
                if lost < LOST_NODE_RETRIES:
                    print(f"bench: {group[0].run_id} lost its Ray node; sent again to the nodes left", file=sys.stderr)
                    pending[submit(group)] = (group, lost + 1)
                    continue
                outcomes = _failed(group, threads, f"Ray task failed: its node died {lost + 1} times: {_first_line(e)}")
            except ray.exceptions.RayError as e:  # the worker died or the task could not run
                outcomes = _failed(group, threads, f"Ray task failed: {type(e).__name__}: {_first_line(e)}")
            yield from outcomes
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)


def _first_line(e: BaseException) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else ""
