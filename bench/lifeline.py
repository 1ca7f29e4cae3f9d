"""A run process ends when its driver does, however the driver died (``kill -9`` included).

Without this a worker re-parented to PID 1 trains to the end of its run for nobody, holding its
memory, and keeps multiprocessing's resource tracker waiting on it.

- Linux: the kernel's parent-death signal (``prctl(PR_SET_PDEATHSIG, SIGKILL)``), delivered at once
  even while the process is deep in a framework's C code. The kernel ties it to the *thread* that
  started the process, so the driver starts run processes from its main thread.
- Everywhere, as a second line: a daemon thread waiting on multiprocessing's parent sentinel, a
  pipe end that closes when the parent dies, then ``os._exit``.
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import signal
import sys
import threading
from multiprocessing.connection import wait

PR_SET_PDEATHSIG = 1  # linux/prctl.h
ORPHANED = 70  # the exit code of a process whose driver died first


def follow_parent() -> None:
    """Called first in every spawned run process: die with the process that spawned this one.

    Ctrl-C reaches every process of the terminal's group; the driver alone answers it (it kills its
    run processes and says what was kept), so a run process ignores SIGINT instead of printing a
    traceback of its own."""
    parent = mp.parent_process()
    if parent is None:  # not a multiprocessing child: nothing to follow
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    threading.Thread(target=_exit_when_closed, args=(parent.sentinel,), name="lifeline", daemon=True).start()
    if os.getppid() != parent.pid:  # the parent died before the signal was asked for
        os._exit(ORPHANED)


def _exit_when_closed(sentinel: int) -> None:
    wait([sentinel])
    os._exit(ORPHANED)


def guard_descendants() -> None:
    """Start a reaper that SIGKILLs every process this one started, and theirs, if this one dies first.

    For a local Ray the driver starts with ``ray.init``: its node processes die with the driver,
    but its agents, told their raylet is gone, wait a minute on a dead GCS before exiting. The
    reaper notes this process's descendants every ``LOOK`` seconds (Linux ``/proc``; elsewhere it
    sees none) and kills those still alive (same PID, same start time) once this process's sentinel
    closes. A normal exit stops the reaper first (multiprocessing ends daemonic children), so it
    acts only on a death that runs no cleanup: ``kill -9``, a crash."""
    mp.get_context("spawn").Process(target=_reap, args=(os.getpid(),), name="lrbench-reaper", daemon=True).start()


LOOK = 0.5


def _reap(driver: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the terminal's whole group: the driver answers it
    seen: dict[int, str] = {}
    sentinel = mp.parent_process().sentinel
    while not wait([sentinel], timeout=LOOK):
        seen.update(_descendants(driver, exclude=os.getpid()))
    for pid, started in seen.items():
        if _started(pid) == started:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def _started(pid: int) -> str | None:
    """A process's start time (clock ticks since boot), which with its PID names it uniquely; None when gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _descendants(root: int, exclude: int) -> dict[int, str]:
    parents: dict[int, tuple[int, str]] = {}
    try:
        entries = [e for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return {}
    for entry in entries:
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents[int(entry)] = (int(fields[1]), fields[19])
    found, frontier = {}, {root}
    while frontier:
        frontier = {pid for pid, (ppid, _) in parents.items() if ppid in frontier and pid not in found and pid != exclude}
        found.update({pid: parents[pid][1] for pid in frontier})
    return found
