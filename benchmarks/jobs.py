"""Does `--jobs 2` finish `bench all --quick` sooner than `--jobs 1`, with the same rows? And Ray?

Each variant runs `bench all --quick` in a fresh results folder, one after the other on
the same machine; the script prints wall seconds, the ratio to `--jobs 1`, and how far
each variant's rows are (timing metrics aside) from those of `--jobs 1 --threads 1`,
which has the same threads per run as `--jobs 2` and Ray. `--jobs 1` alone gives each
run both cores, and a different thread count changes float32 reduction order, so its
rows are compared too and their largest difference named. Writes results/perf/jobs.csv.

    python benchmarks/jobs.py [--frameworks torch] [--ray]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from bench.results import ROWS, TIMING_METRICS

KEYS = ["run_id", "epoch", "step", "split", "metric"]


def rows(out: Path) -> pd.DataFrame:
    frames = [pd.read_csv(p) for p in sorted(out.glob(f"*/{ROWS}"))]
    df = pd.concat(frames, ignore_index=True)
    df = df[~df["metric"].isin(TIMING_METRICS)]
    return df.sort_values(KEYS).reset_index(drop=True)


def run(variant: list[str], frameworks: str, out: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bench.cli", "all", "--quick", "--frameworks", frameworks,
                    "--out", str(out), *variant], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frameworks", default="torch")
    parser.add_argument("--ray", action="store_true", help="also run with --executor ray")
    parser.add_argument("--csv", type=Path, default=Path("results/perf/jobs.csv"))
    args = parser.parse_args()
    variants = {"--jobs 1": ["--jobs", "1"], "--jobs 2": ["--jobs", "2"],
                "--jobs 1 --threads 1": ["--jobs", "1", "--threads", "1"]}
    if args.ray:
        variants["--executor ray --threads 1"] = ["--executor", "ray", "--threads", "1"]
    table, frames = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, variant) in enumerate(variants.items()):
            seconds = run(variant, args.frameworks, Path(tmp) / str(i))
            frames.append(rows(Path(tmp) / str(i)))
            print(f"{name:<28} {seconds:7.1f} s", flush=True)
            table.append({"variant": name, "wall_seconds": round(seconds, 1), "rows": len(frames[-1])})
    same_threads = frames[list(variants).index("--jobs 1 --threads 1")]
    for entry, df in zip(table, frames):
        entry["same_rows"] = df[KEYS].equals(same_threads[KEYS])
        diff = (df["value"] - same_threads["value"]).abs()
        entry["max_abs_difference_vs_1_thread"] = float(diff.max())
        entry["metric_of_max_difference"] = df["metric"][diff.idxmax()] if diff.max() > 0 else ""
        entry["ratio_to_jobs_1"] = round(entry["wall_seconds"] / table[0]["wall_seconds"], 3)
        entry.update(frameworks=args.frameworks, cores=os.cpu_count(), machine=platform.platform())
    result = pd.DataFrame(table)
    print(result.drop(columns=["machine"]).to_string(index=False))
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    result.to_csv(args.csv, index=False)
    print(f"-> {args.csv}")


if __name__ == "__main__":
    main()
