"""What frameworks print, kept off the terminal and kept for the run.

A process that imports a framework first quiets the frameworks' own loggers where they allow it
(TensorFlow and XLA, absl, Paddle's glog), then points its standard output and error, at the file
descriptor level so that C++ logs go too, at a log file. The file has no name (a kill -9 of anyone leaves
nothing behind): the driver makes it and a spawned worker inherits its descriptor. The driver reads each
run's part of it into the run's ``runs/<run_id>.log``, and a failed run's last lines into its one-line error.
A variable the user set is left as set (``TF_CPP_MIN_LOG_LEVEL=0`` brings TensorFlow's logs back).
"""

from __future__ import annotations

import os
import sys
import tempfile
from multiprocessing import reduction

QUIET = {
    "TF_CPP_MIN_LOG_LEVEL": "3",  # TensorFlow, XLA and their absl logs: fatal only
    "GLOG_minloglevel": "2",  # Paddle: errors only
    "GRPC_VERBOSITY": "ERROR",
    "KMP_WARNINGS": "0",  # OpenMP's
}
KEEP = 200_000  # characters of a log kept per run: its end, where a failure's cause is
TAIL = 3  # a failed run's last log lines in its error


def capture(log: int) -> None:
    """In a framework's process, before the import: loggers quieted, everything printed goes to the file
    descriptor ``log`` (a ``WorkerLog``'s, inherited or its own)."""
    for name, value in QUIET.items():
        os.environ.setdefault(name, value)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(log, 1)
    os.dup2(log, 2)


def flush() -> None:
    """Before a worker answers: what it printed is in its log."""
    sys.stdout.flush()
    sys.stderr.flush()


class _Inherited:
    """A file descriptor that a spawned process inherits as it starts (how multiprocessing passes a Pipe)."""

    def __init__(self, fd: int):
        self.fd = fd

    def __reduce__(self):
        return _inherited, (reduction.DupFd(self.fd),)


def _inherited(dup) -> int:
    return dup.detach()


class WorkerLog:
    """One worker's log: a temporary file without a name, read from where the worker's current group began."""

    def __init__(self):
        self.file = tempfile.TemporaryFile(prefix="lrbench-", suffix=".log")
        self.fd = self.file.fileno()
        self.begin = 0

    def for_child(self) -> _Inherited:
        """The log as a spawned process's argument: it arrives there as the descriptor ``capture`` takes."""
        return _Inherited(self.fd)

    def mark(self) -> None:
        """A new group begins here."""
        self.begin = os.fstat(self.fd).st_size

    def text(self) -> str:
        """What the worker printed since its group began (its end, when long)."""
        size = os.fstat(self.fd).st_size
        start = max(self.begin, size - 4 * KEEP)  # at most 4 bytes a character
        return os.pread(self.fd, size - start, start).decode("utf-8", errors="replace")[-KEEP:]

    def close(self) -> None:
        self.file.close()


def last_lines(text: str, n: int = TAIL) -> str:
    """A log's last ``n`` non-blank lines as one line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-n:])


def with_log(error: str, log: str) -> str:
    """A failed run's error, and its log's last lines when it has any."""
    tail = last_lines(log)
    return f"{error} (its log ends: {tail})" if tail else error
