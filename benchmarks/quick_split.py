"""Where `bench all --quick` spends its time, per framework, with a process per run and with workers.

Runs `bench all --quick` twice, one after the other on the same machine, `--jobs 1`:
first with `--fresh-process` (a process for every run: how lrbench ran before), then
with the default workers (one process per framework and study, its runs in turn). For
each variant and framework it prints run-seconds by phase, summed over the runs, from
the manifests and rows:

- import: the framework's import and setup (near zero in a worker's later runs)
- data: loading the dataset and putting it on the device
- build: model, optimizer and schedule objects
- warm-up: each run's first epoch beyond its median epoch (compilation, caches)
- train, eval: the epochs and the evaluations, as the runner times them
- other: the rest of the time the driver waited for the run: the process's start (spawn,
  Python, lrbench's import), the runner's rows and weight norms, the pipe
and the driver's share (wall time not inside any run: study loading, results, figures,
the report). It checks that both variants gave the same rows (timing metrics aside) and
writes results/perf/quick-split.csv.

    python benchmarks/quick_split.py [--frameworks torch,keras,paddle]
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from bench.results import ROWS, TIMING_METRICS

PHASES = ["other", "import", "data", "build", "warm-up", "train", "eval"]
KEYS = ["run_id", "epoch", "step", "split", "metric"]


def run(frameworks: str, out: Path, extra: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bench.cli", "all", "--quick", "--frameworks", frameworks, "--jobs", "1",
                    "--out", str(out), *extra], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def split(out: Path) -> pd.DataFrame:
    """Run-seconds by phase and framework. A group of runs that trained in one go (a warm-start chain)
    shares its process, import and data: those count once per group."""
    manifest = pd.concat([pd.read_csv(p) for p in out.glob("*/manifest.csv")], ignore_index=True)
    rows = pd.concat([pd.read_csv(p) for p in out.glob(f"*/{ROWS}")], ignore_index=True)
    timing = rows[rows["metric"].isin(TIMING_METRICS)].pivot_table(index="run_id", columns="metric", values="value",
                                                                    aggfunc="sum")
    m = manifest.set_index("run_id").join(timing)
    m["warm-up"] = (m["first_epoch_seconds"] - m["median_epoch_seconds"].fillna(m["first_epoch_seconds"])).clip(lower=0)
    m["train"] = m["epoch_seconds"] - m["warm-up"]
    group = ["study", "framework", "process_run", "process_seconds", "import_seconds", "data_seconds"]
    per_group = m.groupby(group, dropna=False).agg(runs=("model", "size"), build=("build_seconds", "sum"),
                                                   warm=("warm-up", "sum"), train=("train", "sum"),
                                                   eval=("eval_seconds", "sum")).reset_index()
    per_group = per_group.rename(columns={"warm": "warm-up", "import_seconds": "import", "data_seconds": "data",
                                          "process_seconds": "in_runs"})
    inside = per_group[["import", "data", "build", "warm-up", "train", "eval"]].sum(axis=1)
    per_group["other"] = per_group["in_runs"] - inside  # the process's start, lrbench's import, rows, the pipe
    return per_group.groupby("framework")[["runs", *PHASES, "in_runs"]].sum()


def same_rows(a: Path, b: Path) -> float:
    """Largest difference between the two variants' rows, timing metrics aside (0: identical)."""
    def load(out):
        df = pd.concat([pd.read_csv(p) for p in sorted(out.glob(f"*/{ROWS}"))], ignore_index=True)
        return df[~df["metric"].isin(TIMING_METRICS)].sort_values(KEYS).reset_index(drop=True)
    x, y = load(a), load(b)
    assert x[KEYS].equals(y[KEYS]), "the two variants ran different rows"
    return float((x["value"] - y["value"]).abs().max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frameworks", default="torch,keras,paddle")
    parser.add_argument("--csv", type=Path, default=Path("results/perf/quick-split.csv"))
    args = parser.parse_args()
    variants = {"process per run": ["--fresh-process"], "workers": []}
    table, walls = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, extra in variants.items():
            out = Path(tmp) / name.replace(" ", "-")
            walls[name] = run(args.frameworks, out, extra)
            phases = split(out)
            driver = walls[name] - phases["in_runs"].sum()
            for framework, r in phases.iterrows():
                table.append({"variant": name, "framework": framework, "runs": int(r["runs"]),
                              **{p: round(r[p], 1) for p in PHASES}, "in_runs": round(r["in_runs"], 1)})
            table.append({"variant": name, "framework": "(driver)", "in_runs": round(driver, 1)})
            table.append({"variant": name, "framework": "(wall)", "in_runs": round(walls[name], 1)})
            print(f"{name}: {walls[name]:.1f} s", flush=True)
        largest = same_rows(*(Path(tmp) / n.replace(" ", "-") for n in variants))
    df = pd.DataFrame(table)
    df["platform"] = platform.platform()
    print(df.drop(columns="platform").to_string(index=False))
    before, after = walls.values()
    print(f"workers / process per run: {after / before:.2f} ({after:.0f} s against {before:.0f} s); "
          f"largest difference in the rows: {largest:g}")
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.csv, index=False)
    print(args.csv)


if __name__ == "__main__":
    main()
