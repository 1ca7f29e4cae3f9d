"""How much sooner does the lr-sweep finish with --fused? Four lrs on MNIST, fused vs four separate runs.

Both go through `bench run` (one process per run alone; one process for the fused
four), with the same threads, one after the other on the same machine. Prints the
wall seconds of each command and of its runs alone (the workers' time, from the
manifests: without the command's start and its figures, which both pay once), the
ratios fused / separate, and the largest difference between the members' step losses
and the separate runs' over the first epoch. Writes results/perf/fused-<framework>.csv.

    python benchmarks/fused.py [--framework torch|jax] [--models mlp,lenet] [--epochs 1]
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

from bench.results import ROWS

STUDY = """name = "fused-{model}"
dataset = "mnist"
model = "{model}"
epochs = {epochs}
batch_size = 64
lr = 0.1
log_every = 1
optimizer = {{ name = "sgd", momentum = 0.5 }}
[grid]
lr = [0.1, 0.01, 0.001, 0.0001]
"""


def bench_run(framework: str, study: Path, out: Path, *options: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bench.cli", "run", str(study), "--frameworks", framework, "--out", str(out),
                    "--device", "cpu", *options], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def step_losses(out: Path) -> pd.DataFrame:
    df = pd.concat(pd.read_csv(p) for p in out.glob(f"*/{ROWS}"))
    df = df[df["step"].notna() & (df["epoch"] == 1)]
    return df.set_index(["lr", "step"])["value"].sort_index()


def runs_seconds(out: Path) -> float:
    """The workers' seconds on the runs: each group's ``process_seconds`` once (a fused group's members share it)."""
    manifest = pd.concat(pd.read_csv(p) for p in out.glob("*/manifest.csv"))
    return float((manifest["process_seconds"] / manifest["fused"]).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", default="torch", help="a fusable framework (backends FRAMEWORKS)")
    parser.add_argument("--models", default="mlp,lenet")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--csv", type=Path, help="default: results/perf/fused-<framework>.csv")
    args = parser.parse_args()
    args.csv = args.csv or Path(f"results/perf/fused-{args.framework}.csv")
    table = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            study = Path(tmp) / f"{model}.toml"
            study.write_text(STUDY.format(model=model, epochs=args.epochs))
            separate = bench_run(args.framework, study, Path(tmp) / f"{model}-separate")
            fused = bench_run(args.framework, study, Path(tmp) / f"{model}-fused", "--fused")
            a, b = step_losses(Path(tmp) / f"{model}-separate"), step_losses(Path(tmp) / f"{model}-fused")
            runs = [runs_seconds(Path(tmp) / f"{model}-{way}") for way in ("separate", "fused")]
            table.append({"framework": args.framework, "model": model, "runs": 4, "epochs": args.epochs,
                          "separate_seconds": round(separate, 1),
                          "fused_seconds": round(fused, 1), "fused_over_separate": round(fused / separate, 3),
                          "separate_runs_seconds": round(runs[0], 1), "fused_runs_seconds": round(runs[1], 1),
                          "runs_fused_over_separate": round(runs[1] / runs[0], 3),
                          "max_abs_step_loss_difference": float((a - b).abs().max()), "cores": os.cpu_count(),
                          "platform": platform.platform()})
            print(table[-1], flush=True)
    result = pd.DataFrame(table)
    print(result.drop(columns="platform").to_string(index=False))
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    result.to_csv(args.csv, index=False)
    print(f"-> {args.csv}")


if __name__ == "__main__":
    main()
