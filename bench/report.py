"""A markdown report from the CSVs and manifests alone: one table per study folder."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .results import atomic_write, read_manifests, read_results

CONFIG_COLUMNS = ["model", "optimizer", "schedule", "lr"]


def study_table(df: pd.DataFrame, manifest: pd.DataFrame) -> pd.DataFrame:
    """Per config x framework: final and best val accuracy (mean over seeds), final losses, timing, status."""
    epochs = df[df["step"].isna()]
    wide = epochs.pivot_table(index=["run_id", "epoch"], columns=["split", "metric"], values="value")
    wide.columns = [f"{s}_{m}" for s, m in wide.columns]
    wide = wide.reset_index()
    runs = epochs.drop_duplicates("run_id").set_index("run_id")[["framework", *CONFIG_COLUMNS, "seed"]]
    last = wide.sort_values("epoch").groupby("run_id").last()
    per_run = runs.join(pd.DataFrame({
        "final_val_acc": last["val_accuracy"],
        "best_val_acc": wide.groupby("run_id")["val_accuracy"].max(),
        "final_train_loss": last["train_loss"],
        "final_val_loss": last["val_loss"],
        "epochs": last["epoch"],
    }))
    status = manifest.set_index("run_id")[["status", "median_epoch_seconds", "first_epoch_seconds"]]
    per_run = per_run.join(status)
    agg = per_run.groupby([*CONFIG_COLUMNS, "framework"], sort=False).agg(
        seeds=("seed", "count"),
        final_val_acc=("final_val_acc", "mean"),
        final_val_acc_std=("final_val_acc", "std"),
        best_val_acc=("best_val_acc", "mean"),
        final_train_loss=("final_train_loss", "mean"),
        final_val_loss=("final_val_loss", "mean"),
        epochs=("epochs", "max"),
        median_epoch_s=("median_epoch_seconds", "median"),
        first_epoch_s=("first_epoch_seconds", "median"),
        status=("status", lambda s: ", ".join(f"{n} {k}" for k, n in s.value_counts().items())),
    )
    return agg.reset_index()


def write_report(folder: Path) -> Path:
    folder = Path(folder)
    study_dirs = [p.parent for p in sorted(folder.glob("*/results.csv"))] or [folder]
    lines = [f"# lrbench report: {folder}", ""]
    for study_dir in study_dirs:
        df, manifest = read_results(study_dir), read_manifests(study_dir)
        if df.empty:
            continue
        first = df.iloc[0]
        lines += [f"## {study_dir.name}: {first['dataset']}, {first['model']}", ""]
        table = study_table(df, manifest)
        lines += [table.to_markdown(index=False, floatfmt=".4g"), ""]
        flagged = manifest[manifest["status"].isin(["diverged", "collapsed", "failed"])]
        for _, m in flagged.iterrows():
            lines.append(f"- **{m['status']}**: {m['framework']} {m['optimizer']} {m['schedule']} lr={m['lr']} seed={m['seed']}"
                         + (f" ({m['error']})" if isinstance(m["error"], str) and m["error"] else ""))
        figures = sorted((study_dir / "figures").glob("*.png"))
        lines += [""] + [f"![{p.stem}]({p.relative_to(folder)})" for p in figures] + [""]
    path = folder / "report.md"
    atomic_write(path, "\n".join(lines))
    return path
