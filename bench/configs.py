"""What tells a study's runs apart: the config labels, and the configs that turn out to be one run.

A config is named by the columns that vary between the study's runs (seed and framework aside).
Two configs are the same run when, for every framework and seed they share, they have the same
optimizer, model, batch size, protocol and init, the same applied lr at every epoch (and at every
logged step; to float32 precision, ``SAME_LR``), and train losses equal to ``SAME_LOSS`` (relative):
multi-step whose milestones lie past the last epoch is constant. Such configs are ranked and drawn once, under both names.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CONFIG_COLUMNS = ("protocol", "init", "model", "optimizer", "schedule", "lr", "batch_size")  # where rows carry them
NUMERIC_CONFIG = ("lr", "batch_size")  # bare numbers need their name; labels like "adam" do not
SAME_RUN = ("optimizer", "model", "batch_size", "protocol", "init")  # besides the lr sequence
SAME_LR = 1e-6  # float32 rounding: Keras reports a constant 0.3 as 0.300000011921
SAME_LOSS = 1e-6
JOIN = " = "


def config_labels(df: pd.DataFrame) -> tuple[pd.Series, list[str], str]:
    """Label each row by what varies between the study's runs (seed and framework aside); after
    ``fold_identical``, by the labels the configs had before, a folded group under all its names.

    Returns the per-row labels, the configs in legend order and the legend title.
    """
    runs = df.drop_duplicates("run_id").set_index("run_id")
    varying = [c for c in CONFIG_COLUMNS if c in runs and runs[c].nunique(dropna=False) > 1] or ["optimizer"]

    def label(run: pd.Series) -> str:
        parts = [f"{c}={float(run[c]):g}" if c in NUMERIC_CONFIG else str(run[c]) for c in varying]
        return " ".join(parts)

    run_labels = runs.apply(label, axis=1) if len(runs) else pd.Series(dtype=str)
    if "config_label" in runs:  # set by fold_identical: the labels the study's configs had before it folded them
        run_labels = runs["config_label"].where(runs["config_label"].notna(), run_labels)
    # Group by the text columns in order of first appearance, the largest lr first inside each group.
    keys = pd.DataFrame({c: pd.factorize(runs[c])[0] for c in varying if c != "lr"}, index=runs.index)
    if "lr" in varying:
        keys["lr"] = -runs["lr"].astype(float)
    ordered = run_labels.loc[keys.sort_values(list(keys.columns), kind="stable").index] if len(keys.columns) else run_labels
    return df["run_id"].map(run_labels), list(dict.fromkeys(ordered)), ", ".join(varying)


def _signatures(df: pd.DataFrame, labels: pd.Series) -> dict[str, dict]:
    """Per config: {(framework, seed): (what defines the run besides its lr, applied lrs, train losses)}."""
    df = df.assign(config=labels)
    train = df[df["split"] == "train"]
    out: dict[str, dict] = {}
    for _, rows in train.groupby("run_id", sort=False):
        first = rows.iloc[0]
        rows = rows.sort_values(["epoch", "step"], na_position="first")
        lr = rows.loc[rows["metric"] == "lr", "value"].astype(float).to_numpy()
        loss = rows.loc[rows["metric"] == "loss", "value"].astype(float).to_numpy()
        what = tuple(str(first[c]) for c in SAME_RUN if c in rows)
        out.setdefault(first["config"], {})[(first["framework"], first["seed"])] = (what, lr, loss)
    return out


def _same(a: dict, b: dict) -> bool:
    shared = set(a) & set(b)
    def close(x, y, rtol):
        return len(x) == len(y) and np.allclose(x, y, rtol=rtol, atol=0, equal_nan=True)

    return bool(shared) and all(a[k][0] == b[k][0] and close(a[k][1], b[k][1], SAME_LR) and close(a[k][2], b[k][2], SAME_LOSS)
                                for k in shared)


def identical_groups(df: pd.DataFrame) -> list[list[str]]:
    """The configs (labels, in legend order) that are one run, in groups of two or more."""
    labels, order, _ = config_labels(df)
    signatures = _signatures(df, labels)
    groups: list[list[str]] = []
    for config in order:
        if config not in signatures:
            continue
        for group in groups:
            if _same(signatures[group[0]], signatures[config]):
                group.append(config)
                break
        else:
            groups.append([config])
    return [g for g in groups if len(g) > 1]


def fold_identical(df: pd.DataFrame) -> tuple[pd.DataFrame, list[list[str]]]:
    """The rows with each group of identical configs kept once, under all its names (``a = b``, in the
    ``config_label`` column that ``config_labels`` reads); the groups."""
    groups = identical_groups(df)
    if not groups:
        return df, groups
    labels = config_labels(df)[0]
    drop = {c for g in groups for c in g[1:]}
    named = {g[0]: JOIN.join(g) for g in groups}
    kept = ~labels.isin(drop)
    return df[kept].assign(config_label=labels[kept].map(lambda c: named.get(c, c))), groups
