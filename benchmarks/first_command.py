"""The README's first command as a newcomer meets it: how long `bench all --quick` takes, then the same command
again with nothing left to run, then `bench report` on the unchanged folder.

Each step runs the installed `bench` in a process of its own, one after the other, into one results folder
(a fresh temporary one unless --out names one). It prints wall seconds per step and each step's ratio to the
first, and appends a row per step to results/perf/first-command.csv. Goals (issue-tracked): the first run
<= 600 s on 2 CPU cores with torch, Keras and Paddle; the rerun <= 10 s; the report <= 5 s.

    python benchmarks/first_command.py [--out DIR] [-- extra bench options, e.g. --frameworks torch]
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIRST = ["all", "--quick", "--jobs", "2"]  # the README's first command
CSV = Path(__file__).resolve().parents[1] / "results" / "perf" / "first-command.csv"


def timed(argv: list[str]) -> tuple[float, int]:
    bench = shutil.which("bench") or sys.exit("bench is not installed in this environment: pip install -e \".[all]\"")
    start = time.perf_counter()
    code = subprocess.run([bench, *argv], stdout=subprocess.DEVNULL).returncode
    return time.perf_counter() - start, code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="results folder (default: a fresh temporary one)")
    parser.add_argument("extra", nargs="*", help="more options for `bench all` (after --)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="lrbench-first-"))
    steps = [("first run", [*FIRST, *args.extra, "--out", str(out)]),
             ("same command again", [*FIRST, *args.extra, "--out", str(out)]),
             ("bench report", ["report", str(out)])]
    rows = []
    for name, argv in steps:
        seconds, code = timed(argv)
        first = rows[0]["seconds"] if rows else seconds
        rows.append({"step": name, "command": "bench " + " ".join(argv).replace(str(out), "OUT"), "seconds": round(seconds, 1),
                     "ratio_to_first_run": round(seconds / first, 4), "exit_code": code, "cores": os.cpu_count(),
                     "machine": platform.platform()})
        print(f"{name:<20} {seconds:8.1f} s  x{seconds / first:.4f} of the first run  (exit {code})", flush=True)
    CSV.parent.mkdir(parents=True, exist_ok=True)
    new = not CSV.exists()
    with open(CSV, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        if new:
            writer.writeheader()
        writer.writerows(rows)
    print(f"{out}\n{CSV}")


if __name__ == "__main__":
    main()
