"""Whether a finished run trained: the rule that calls a run collapsed, written once.

The runner applies it as a run finishes; the report applies it again to the rows, so that runs
recorded before a rule existed are judged by it too. A run has collapsed when it predicts a single
class for ``collapse_epochs`` epochs in a row, or when it ends at chance: after at least
``CHANCE_EPOCHS`` epochs (a shorter run is a smoke test, too short to call), predicting at most
``CHANCE_CLASSES`` of a dataset's classes with a val accuracy within ``CHANCE_MARGIN`` of
1 / classes. Such a run has learnt nothing worth ranking, whatever its status said.
"""

from __future__ import annotations

import pandas as pd

CHANCE_CLASSES = 2
CHANCE_MARGIN = 0.1  # 10 points: two classes of ten, each right every time, score 0.2
CHANCE_EPOCHS = 3  # as collapse_epochs' default


def at_chance(classes_predicted: float, accuracy: float, classes: int, epochs: int) -> bool:
    """True when a run's last epoch (of at least three) predicts at most two classes (of more than two) with accuracy
    near chance."""
    return (epochs >= CHANCE_EPOCHS and classes > CHANCE_CLASSES and classes_predicted <= CHANCE_CLASSES
            and accuracy <= 1 / classes + CHANCE_MARGIN)


def chance_note(classes_predicted: float, accuracy: float, classes: int) -> str:
    return (f"ends at chance: predicts {classes_predicted:g} of {classes} classes, val accuracy {accuracy:.4f} "
            f"(chance {1 / classes:.2f})")


def flag_at_chance(manifest: pd.DataFrame, rows: pd.DataFrame, classes: dict[str, int]) -> pd.DataFrame:
    """``manifest`` with every "done" run whose last epoch ends at chance marked collapsed, the reason as its error.

    ``rows``: the study's epoch rows; ``classes``: each dataset's number of classes."""
    if manifest.empty or rows.empty or "status" not in manifest:
        return manifest
    val = rows[(rows["split"] == "val") & rows["metric"].isin(["classes_predicted", "accuracy"]) & rows["step"].isna()]
    last = val.sort_values("epoch").groupby(["run_id", "metric"])["value"].last().unstack()
    epochs = val.groupby("run_id")["epoch"].max()
    if not {"classes_predicted", "accuracy"} <= set(last.columns):
        return manifest
    dataset = rows.drop_duplicates("run_id").set_index("run_id")["dataset"]
    out = manifest.assign(error=manifest["error"].astype(object) if "error" in manifest else "")
    for i, m in out[out["status"] == "done"].iterrows():
        n = classes.get(dataset.get(m["run_id"]))
        if m["run_id"] not in last.index or n is None:
            continue
        k, acc = last.loc[m["run_id"], "classes_predicted"], last.loc[m["run_id"], "accuracy"]
        if at_chance(k, acc, n, epochs[m["run_id"]]):
            out.loc[i, ["status", "error"]] = ["collapsed", chance_note(k, acc, n)]
    return out
