"""What frameworks print, kept off the terminal and kept for the run.

A process that imports a framework first quiets the frameworks' own loggers where they allow it
(TensorFlow and XLA, absl, Paddle's glog), then points its standard output and error, at the file
descriptor level so that C++ logs go too, at a log file. The driver reads each run's part of that
file into the run's ``runs/<run_id>.log``, and a failed run's last lines into its one-line error.
A variable the user set is left as set (``TF_CPP_MIN_LOG_LEVEL=0`` brings TensorFlow's logs back).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile

QUIET = {
    "TF_CPP_MIN_LOG_LEVEL": "3",  # TensorFlow, XLA and their absl logs: fatal only
    "GLOG_minloglevel": "2",  # Paddle: errors only
    "GRPC_VERBOSITY": "ERROR",
    "KMP_WARNINGS": "0",  # OpenMP's
}
KEEP = 200_000  # characters of a log kept per run: its end, where a failure's cause is
TAIL = 3  # a failed run's last log lines in its error


def capture(path: str) -> None:
    """In a framework's process, before the import: loggers quieted, everything printed appended to ``path``."""
    for name, value in QUIET.items():
        os.environ.setdefault(name, value)
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    with contextlib.suppress(OSError):  # the driver reads it through the descriptor it holds: a kill -9 leaves no file
        os.unlink(path)


def flush() -> None:
    """Before a worker answers: what it printed is in its log."""
    sys.stdout.flush()
    sys.stderr.flush()


class WorkerLog:
    """The driver's side of one worker's log: a temporary file, read from where the worker's current group began.

    The driver holds it open, so the file is read through that descriptor once the worker has removed its name."""

    def __init__(self):
        self.fd, self.path = tempfile.mkstemp(prefix="lrbench-", suffix=".log")
        self.begin = 0

    def mark(self) -> None:
        """A new group begins here."""
        self.begin = os.fstat(self.fd).st_size

    def text(self) -> str:
        """What the worker printed since its group began (its end, when long)."""
        size = os.fstat(self.fd).st_size
        start = max(self.begin, size - 4 * KEEP)  # at most 4 bytes a character
        return os.pread(self.fd, size - start, start).decode("utf-8", errors="replace")[-KEEP:]

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.path)  # a worker that died before it opened its log
        with contextlib.suppress(OSError):
            os.close(self.fd)


def last_lines(text: str, n: int = TAIL) -> str:
    """A log's last ``n`` non-blank lines as one line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-n:])


def with_log(error: str, log: str) -> str:
    """A failed run's error, and its log's last lines when it has any."""
    tail = last_lines(log)
    return f"{error} (its log ends: {tail})" if tail else error
