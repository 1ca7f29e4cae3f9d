"""The results schema (../DESIGN.md): the columns of every row and manifest, the metrics and the statuses.

Its own module because a study's definition names them too (a claim's metrics and filters), before
anything runs or is stored.
"""

COLUMNS = [
    "run_id", "study", "framework", "framework_version", "device", "model", "dataset", "optimizer",
    "schedule", "lr", "batch_size", "seed", "init", "protocol", "epoch", "step", "split", "metric", "value",
]
# What tells two runs of a study apart besides the config columns: a column of every row, so that a
# pivot or ``hue=`` never mixes them. Rows written before these columns existed get them from the manifest.
RUN_FACTORS = ("init", "protocol")
LEGACY_COLUMNS = [c for c in COLUMNS if c not in RUN_FACTORS]
MANIFEST_COLUMNS = [
    "run_id", "study", "framework", "framework_version", "device", "threads", "fused", "model", "dataset",
    "optimizer", "schedule", "lr", "batch_size", "seed", "init", "protocol", "schedule_source", "epochs", "epochs_done",
    "status", "error", "log",
    "wall_seconds", "first_epoch_seconds", "median_epoch_seconds",
    "import_seconds", "data_seconds", "build_seconds", "process_seconds", "process_run", "python", "numpy", "platform", "node",
    "started", "lrbench", "rows", "rows_sha256", "spec",
]
# The rows every epoch of a run has (split, metric); weight_norm/<layer> and step losses come on top.
EPOCH_METRICS = (("train", "loss"), ("train", "accuracy"), ("train", "lr"), ("train", "epoch_seconds"),
                 ("val", "loss"), ("val", "accuracy"), ("val", "classes_predicted"), ("val", "eval_seconds"))
# Rows a study asks for (bench/spec.py: eval_train, floor_cost, log_at = "running"): the original's own measures.
STUDY_METRICS = (("train", "eval_loss"), ("train", "eval_accuracy"), ("train", "cost"), ("train", "running_loss"))
STATUSES = ("done", "diverged", "collapsed", "failed")
FINISHED = ("done", "diverged", "collapsed")  # a resumed sweep skips these; failed runs are retried
TIMING_METRICS = ("epoch_seconds", "eval_seconds")
NUMERIC_COLUMNS = ("lr", "batch_size", "seed", "epoch", "step", "value")  # of the rows; a reader checks them
