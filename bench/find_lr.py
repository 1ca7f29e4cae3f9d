"""`bench find-lr`: the LR range test (Smith 2015, 2017) on a study's model, data and optimizer.

In every framework, from the same initial weights and the same batches, the lr grows by a
constant factor per step from ``min_lr`` to ``max_lr`` over ``steps`` steps (the
``range_test`` schedule, run by each framework's own scheduler). Per step it records the
lr applied, the loss and the smoothed loss: an exponential moving average (``SMOOTHING``,
bias-corrected, as fastai's ``lr_find``). The test stops at the first step whose smoothed
loss exceeds ``STOP`` times its minimum so far, or is not finite (checked every ``CHUNK``
steps; the rows end at that step).

Suggestions, per framework, by two rules written here once:
- steepest: the lr at which the smoothed loss falls fastest per decade of lr, before its minimum;
- minimum / 10: a tenth of the lr at which the smoothed loss is lowest.
Both are points of the grid of lrs the test ran; frameworks are compared in grid steps.

A test is uninformative ("no clear minimum") when its smoothed loss never falls ``DROP`` (a
fraction of its start) below its start, or its stop rule never triggers: the lr never got high
enough to show where the loss turns. Its suggestions are then shown with that caveat and the fix.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd

from .lr_control import LrControl
from .optimizers import OPTIMIZERS
from .results import COLUMNS
from .runner import batch_orders, prepare
from .schedules import SCHEDULES
from .spec import RunSpec, StudySpec

SMOOTHING = 0.98
STOP = 4.0
CHUNK = 10
DEFAULTS = {"min_lr": 1e-5, "max_lr": 10.0, "steps": 100}
DROP = 0.10  # the smoothed loss must fall this fraction below its start for the test to show a minimum
TURNED = 1.5  # a smoothed loss this many times its minimum has turned, even short of the stop rule
FAILED = "failed.csv"  # the frameworks whose range test did not run, and why
MANIFEST = "find-lr.json"  # what the test wrote, written after find-lr.csv: per framework, the steps it ran
METRICS = ("lr", "loss", "smoothed_loss")  # the rows of one step


def range_spec(study: StudySpec, framework: str, min_lr: float, max_lr: float, steps: int, device: str = "cpu") -> RunSpec:
    """The study's first config (its model, data, optimizer, batch size, seed 0) under the range test's schedule."""
    spec = study.runs([framework], device=device)[0]
    return dataclasses.replace(spec, study=f"{study.name}-find-lr", lr=float(max_lr), epochs=1, log_every=1,
                               schedule={"name": "range_test", "min_lr": float(min_lr), "steps": int(steps)})


def _batches(spec: RunSpec, n: int):
    """The runner's batch order, epoch after epoch: (epoch from 1, batch indices); an epoch's last batch may be short."""
    for epoch, order in enumerate(batch_orders(spec.seed, n), start=1):
        for start in range(0, n, spec.batch_size):
            yield epoch, order[start:start + spec.batch_size]


def smoothed(losses: np.ndarray, beta: float = SMOOTHING) -> np.ndarray:
    """Bias-corrected exponential moving average; a non-finite loss makes it non-finite from there on."""
    out, avg = np.empty(len(losses)), 0.0
    for i, loss in enumerate(losses):
        avg = beta * avg + (1 - beta) * loss
        out[i] = avg / (1 - beta ** (i + 1))
    return out


def stop_step(smooth: np.ndarray) -> int | None:
    """The index of the first step past the stop rule, or None."""
    best = math.inf
    for i, value in enumerate(smooth):
        if not math.isfinite(value) or value > STOP * best:
            return i
        best = min(best, value)
    return None


def range_test(spec: RunSpec, data_dir=None, threads: int = 1) -> tuple[list[dict], dict]:
    """Train ``spec``'s range test in this process; its rows and what ran (framework version, device, steps)."""
    ready = prepare(spec, data_dir, threads, verify=False)
    backend, data = ready.backend, ready.data
    n = len(data.train_y)
    steps_per_epoch = -(-n // spec.batch_size)
    control = LrControl(SCHEDULES["range_test"].typed(spec.schedule), spec.lr, steps_per_epoch, ready.native)
    backend.build(ready.arch, ready.weights, OPTIMIZERS[spec.optimizer["name"]].typed(spec.optimizer), control.lr())
    total = spec.schedule["steps"]
    losses, lrs, epochs = [], [], []
    batches = _batches(spec, n)
    while len(losses) < total:
        chunk = []  # up to CHUNK batches; a short batch ends a chunk (train_steps splits by batch size)
        for epoch, idx in batches:
            chunk.append((epoch, idx))
            if len(chunk) == min(CHUNK, total - len(losses)) or len(idx) < spec.batch_size:
                break
        result = backend.train_steps(np.concatenate([idx for _, idx in chunk]), spec.batch_size,
                                     control.epoch_plan(len(chunk)))
        losses += list(result.batch_losses)
        lrs += list(result.batch_lrs)
        epochs += [epoch for epoch, _ in chunk]
        stop = stop_step(smoothed(np.array(losses)))
        if stop is not None:
            losses, lrs, epochs = losses[:stop + 1], lrs[:stop + 1], epochs[:stop + 1]
            break
    smooth = smoothed(np.array(losses))
    base = {"run_id": spec.run_id, "study": spec.study, "framework": spec.framework,
            "framework_version": backend.version(), "device": ready.device, "model": spec.model,
            "dataset": spec.dataset, "optimizer": spec.optimizer_label, "schedule": spec.schedule_label, "lr": spec.lr,
            "batch_size": spec.batch_size, "seed": spec.seed, "init": spec.init, "protocol": spec.protocol,
            "split": "train"}
    rows = [{**base, "epoch": epoch, "step": i + 1, "metric": metric, "value": value}
            for i, (epoch, loss, s, lr) in enumerate(zip(epochs, losses, smooth, lrs))
            for metric, value in zip(METRICS, (lr, loss, s))]
    stopped = stop_step(smooth) is not None
    return rows, {"framework": spec.framework, "framework_version": backend.version(), "device": ready.device,
                  "threads": ready.threads, "steps_run": len(losses), "stopped_early": stopped}


def suggest(curve: pd.DataFrame) -> dict:
    """One framework's suggestions from its rows (step, lr, smoothed_loss), by the module's two rules."""
    curve = curve.sort_values("step")
    lr, smooth = curve["lr"].to_numpy(), curve["smoothed_loss"].to_numpy()
    finite = np.isfinite(smooth)
    low = int(np.argmin(np.where(finite, smooth, np.inf)))
    descent = smooth[:low + 1]
    steepest = int(np.argmin(np.gradient(descent, np.log10(lr[:low + 1])))) if low >= 2 else 0
    return {"steepest": lr[steepest], "steepest_step": steepest + 1, "minimum / 10": lr[low] / 10,
            "minimum_step": low + 1, "minimum_smoothed_loss": smooth[low]}


def no_clear_minimum(curve: pd.DataFrame) -> str | None:
    """Why one framework's test shows no clear minimum (the rule in the module's docstring), and the fix the
    curve itself points to; None when it shows one.

    A loss that turned (climbed ``TURNED`` times its minimum or more) without reaching the stop rule does not
    need a higher lr: it needs more steps, so that it has time to fall before the lr passes its turn. A loss
    that never turned needs a higher --max-lr."""
    curve = curve.sort_values("step")
    smooth, lr = curve["smoothed_loss"].to_numpy(), curve["lr"].to_numpy()
    finite = np.isfinite(smooth)
    start, low = smooth[finite][0], smooth[finite].min()
    at_low = lr[int(np.argmin(np.where(finite, smooth, np.inf)))]
    reasons, fixes = [], []
    if (start - low) < DROP * abs(start):
        reasons.append(f"the smoothed loss fell only {(start - low) / abs(start):.1%} below its start ({start:.4g} -> "
                       f"{low:.4g}; a clear minimum needs {DROP:.0%})")
        fixes.append("more --steps (a slower climb of the lr leaves it time to fall)")
    if stop_step(smooth) is None:
        reasons.append(f"the stop rule ({STOP:g}x its minimum) never triggered in {len(smooth)} steps")
        climbed = smooth[finite][-1] / low if low > 0 else 1.0
        if climbed >= TURNED:
            reasons[-1] += f", though the loss turned past lr {at_low:.3g} (up to {climbed:.2g}x its minimum)"
            fixes.append("more --steps" if not fixes else "")
        else:
            fixes.append(f"a higher --max-lr (the loss never turned up to lr {lr[-1]:.3g})")
    if not reasons:
        return None
    return "no clear minimum: " + " and ".join(reasons) + ": " + ", and ".join(f for f in fixes if f)


def _rests_on(curve: pd.DataFrame, step: int) -> str:
    """The loss drop a suggestion rests on: the smoothed loss at the start and at the suggestion's step."""
    smooth = curve.sort_values("step")["smoothed_loss"].to_numpy()
    return f"{smooth[0]:.4g} -> {smooth[step - 1]:.4g} ({(smooth[step - 1] - smooth[0]) / abs(smooth[0]):+.1%})"


AGREE = 1e-3  # relative loss difference that counts as agreeing, step by step


def compare(rows: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Per framework: its suggestions, their distance in grid steps from the reference's, and how far its
    losses are from the reference's: the largest relative difference up to the step of the reference's
    lowest loss (where the loss starts to climb), and the first step where it exceeds ``AGREE``."""
    curves = {fw: g.pivot_table(index="step", columns="metric", values="value").reset_index()
              for fw, g in rows.groupby("framework", sort=False)}
    ref = curves.get(reference)
    ref_suggestion = suggest(ref) if ref is not None else None
    climb = int(ref.set_index("step")["loss"].idxmin()) if ref is not None else None
    table = []
    for fw, curve in curves.items():
        s = suggest(curve)
        entry = {"framework": fw, "steps run": int(curve["step"].max()), "steepest lr": s["steepest"],
                 "steepest rests on (smoothed loss)": _rests_on(curve, s["steepest_step"]),
                 "minimum lr / 10": s["minimum / 10"],
                 "minimum rests on (smoothed loss)": _rests_on(curve, s["minimum_step"]),
                 "lowest smoothed loss": s["minimum_smoothed_loss"],
                 "clear minimum": no_clear_minimum(curve) or "yes"}
        if ref_suggestion is not None:
            entry[f"steepest: grid steps from {reference}"] = s["steepest_step"] - ref_suggestion["steepest_step"]
            entry[f"minimum: grid steps from {reference}"] = s["minimum_step"] - ref_suggestion["minimum_step"]
            a, b = curve.set_index("step")["loss"], ref.set_index("step")["loss"]
            shared = a.index.intersection(b.index)
            rel = (a[shared] - b[shared]).abs() / b[shared].abs()
            entry[f"loss vs {reference} to step {climb} (its lowest; max rel)"] = float(rel.loc[:climb].max())
            beyond = rel[rel > AGREE]
            entry[f"first step beyond {AGREE:g}"] = int(beyond.index[0]) if len(beyond) else "none"
        table.append(entry)
    return pd.DataFrame(table)


def to_rows_csv(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=COLUMNS)


def check_written(df: pd.DataFrame, manifest_text: str, path, fix: str) -> None:
    """``df`` (find-lr.csv) holds exactly the steps its manifest says each framework ran; else one line naming it."""
    from .errors import BenchError

    try:
        ran = {entry["framework"]: int(entry["steps_run"]) for entry in json.loads(manifest_text)["frameworks"]}
    except (ValueError, KeyError, TypeError) as e:
        raise BenchError(f"{path.parent / MANIFEST} is damaged ({type(e).__name__}): {fix}") from None
    have = df.groupby("framework").size().to_dict()
    for framework in sorted(set(ran) | set(have)):
        if have.get(framework, 0) != len(METRICS) * ran.get(framework, 0):
            raise BenchError(f"{path} is damaged ({framework}: {have.get(framework, 0)} rows where the "
                             f"{ran.get(framework, 0)} steps {MANIFEST} records have {len(METRICS) * ran.get(framework, 0)}"
                             f"; rows are lost): {fix}")
    steps = df.groupby("framework")["step"].agg(["min", "max", "nunique"])
    if not (steps["min"].eq(1) & steps["max"].eq(steps["nunique"])).all():
        raise BenchError(f"{path} is damaged (its steps do not run 1, 2, ... in every framework): {fix}")
