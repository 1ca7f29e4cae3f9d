"""No process outlives its driver: ``kill -9`` of ``bench run --jobs 2``, ``bench find-lr`` and a local
``--executor ray`` leaves none of the command's processes alive 5 s later, and none of its log files,
whether the kill comes while the workers train or while they are still starting.

Processes are followed by PID and start time (read from /proc, Linux), not by name: every
descendant of the driver at the moment it is killed must be gone or a zombie.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .processes import descendants, process_table
from .test_executors_torch import LONG_STUDY
from .test_torch import wait_until

pytestmark = [pytest.mark.env_torch, pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")]

GRACE = 5.0  # seconds the sweep's processes have to die once the driver is killed


def alive(processes: dict[int, str]) -> list[str]:
    """Those of ``processes`` still running (same PID, same start time, not a zombie), with their command lines."""
    table = process_table()
    left = []
    for pid, started in processes.items():
        if pid in table and table[pid][2] == started and table[pid][1] != "Z":
            try:
                left.append(f"{pid}: {Path(f'/proc/{pid}/cmdline').read_text().replace(chr(0), ' ')[:100]}")
            except OSError:
                continue
    return left


def command_lines(processes: dict[int, str]) -> list[str]:
    lines = []
    for pid in processes:
        try:
            lines.append(Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " "))
        except OSError:
            continue
    return lines


COMMANDS = {  # argv after the study, and how to tell the command's run processes are training
    "run --jobs 2": (["run", "{study}", "--jobs", "2", "--threads", "1"],
                     lambda lines: sum("multiprocessing.spawn" in line for line in lines) >= 2),
    "find-lr": (["find-lr", "{study}", "--steps", "100000", "--max-lr", "0.0001", "--threads", "1"],
                lambda lines: any("multiprocessing.spawn" in line for line in lines)),
    "run --executor ray": (["run", "{study}", "--executor", "ray", "--threads", "1"],
                           lambda lines: sum("ray::lrbench:" in line for line in lines) >= 2),
}


def starting(lines: list[str]) -> bool:
    """A spawned worker exists: it may not have reached its log yet."""
    return any("multiprocessing.spawn" in line for line in lines)


CASES = [(command, "training") for command in COMMANDS] + [("run --jobs 2", "starting"), ("find-lr", "starting")]


@pytest.mark.parametrize(("command", "moment"), CASES)
def test_kill_9_of_the_driver_leaves_no_process(tmp_path, command, moment):
    study = tmp_path / "victim.toml"
    study.write_text(LONG_STUDY.replace("epochs = 40", "epochs = 100000"))
    args, training = COMMANDS[command]
    temp = tmp_path / "temp"  # the workers' log files are made here; Ray's own files stay where they were
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp), "RAY_TMPDIR": os.environ.get("RAY_TMPDIR", "/tmp")}
    driver = subprocess.Popen([sys.executable, "-m", "bench.cli", *[a.format(study=study) for a in args],
                               "--frameworks", "torch", "--out", str(tmp_path / "out")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True, env=env)
    processes: dict[int, str] = {}
    try:
        ready = training if moment == "training" else starting
        wait_until(lambda: driver.poll() is not None or ready(command_lines(descendants(driver.pid))), 180, every=0.05)
        assert driver.poll() is None, driver.stderr.read().decode()
        if moment == "training":
            time.sleep(2)  # well into training
        processes = descendants(driver.pid)
        assert ready(command_lines(processes)), command_lines(processes)
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        killed = time.time()
        wait_until(lambda: not alive(processes), GRACE, every=0.1)
        left = alive(processes)
        assert not left, f"{time.time() - killed:.1f} s after kill -9 of the driver, still running: {left}"
        assert not list(temp.glob("lrbench-*")), "a worker's log file outlived the driver"
    finally:  # whatever the outcome, leave nothing behind for the next test
        processes.update(descendants(driver.pid))
        driver.kill()
        driver.wait()
        for line in alive(processes):
            os.kill(int(line.split(":")[0]), signal.SIGKILL)
