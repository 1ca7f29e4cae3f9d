"""No bundled claim holds for any run: each is "not held" in some constructed world.

A world gives every config of a study its own random curves (levels, shapes: falling, U-shaped,
rising, jumpy, flat), its own applied lrs and statuses, with small noise between 3 seeds, so the
seeds can decide. A claim that is never "not held" across the worlds would pass on any results:
that is a defect in the claim (or in the claim functions), and this test names it.
"""

import numpy as np
import pandas as pd
import pytest

from bench.claims import evaluate_claims
from bench.results import COLUMNS, EPOCH_METRICS, MANIFEST_COLUMNS, STATUSES
from bench.schema import STUDY_METRICS
from bench.spec import load_study, study_names

WORLDS = 12
EPOCHS = 30  # every epoch a bundled claim names is within it


def _shape(rng, t):
    kind = rng.integers(5)
    x = t / t[-1]
    return [np.exp(-3 * x), (x - 0.4) ** 2, x, np.sin(7 * x) * rng.uniform(0, 1) * np.sign(np.sin(13 * x)), 0 * x][kind]


def world(study, rng):
    specs = study.runs(["torch"], seeds=3, epochs=min(EPOCHS, study.runs(["-"])[0].epochs))
    configs = {}
    rows, manifest = [], []
    for spec in specs:
        key = (spec.protocol, spec.model, spec.optimizer_label, spec.schedule_label, spec.lr)
        t = np.arange(1, spec.epochs + 1, dtype=float)
        if key not in configs:  # the config's own curves, shared by its seeds
            configs[key] = {
                ("val", "accuracy"): np.clip(rng.uniform(0.1, 0.95) + 0.1 * _shape(rng, t), 0, 1),
                ("train", "accuracy"): np.clip(rng.uniform(0.1, 0.95) + 0.1 * _shape(rng, t), 0, 1),
                ("val", "loss"): rng.uniform(0.1, 2) + rng.uniform(0.05, 1) * _shape(rng, t),
                ("train", "loss"): rng.uniform(0.1, 2) + rng.uniform(0.05, 1) * _shape(rng, t),
                ("train", "cost"): rng.uniform(0.1, 2) + rng.uniform(0.05, 1) * _shape(rng, t),
                ("train", "lr"): rng.choice([spec.lr, rng.uniform(1e-4, 1)], size=len(t)),
                "status": rng.choice(STATUSES[:3]),
            }
        curves = configs[key]
        base = {"run_id": spec.run_id, "study": spec.study, "framework": "torch", "framework_version": "1",
                "device": "cpu", "model": spec.model, "dataset": spec.dataset, "optimizer": spec.optimizer_label,
                "schedule": spec.schedule_label, "lr": spec.lr, "batch_size": spec.batch_size, "seed": spec.seed,
                "init": spec.init, "protocol": spec.protocol, "step": np.nan}
        for split, metric in EPOCH_METRICS + tuple(m for m in STUDY_METRICS if m[1] != "running_loss"):
            values = curves.get((split, metric), np.ones(len(t)))
            noise = 0 if metric == "lr" else rng.normal(0, 1e-3, len(t))
            rows += [{**base, "epoch": int(e), "split": split, "metric": metric, "value": v + n}
                     for e, v, n in zip(t, values, np.broadcast_to(noise, len(t)))]
        status = curves["status"] if rng.uniform() < 0.8 else rng.choice(STATUSES[:3])  # seeds may differ
        manifest.append({**dict.fromkeys(MANIFEST_COLUMNS, ""), **{k: base[k] for k in base if k in MANIFEST_COLUMNS},
                         "status": status})
    return pd.DataFrame(rows, columns=COLUMNS), pd.DataFrame(manifest, columns=MANIFEST_COLUMNS)


@pytest.mark.parametrize("name", study_names())
def test_every_bundled_claim_is_not_held_in_some_world(name):
    study = load_study(name)
    if not study.claims:
        pytest.fail(f"{name} has no claims")  # every bundled study states what it expects
    rng = np.random.default_rng(7)
    seen = {c["text"]: set() for c in study.claims}
    for _ in range(WORLDS):
        df, manifest = world(study, rng)
        table = evaluate_claims(study.claims, df, manifest)
        for claim, verdict in zip(table["claim"], table["verdict"]):
            seen[claim].add(verdict.split(":")[0])
    untested = {c["text"] for c in study.claims if c.get("untested")}  # cannot tell, in every world, for its reason
    assert all(seen[c] == {"cannot tell"} for c in untested)
    never = [claim for claim, verdicts in seen.items() if "not held" not in verdicts and claim not in untested]
    assert not never, f"{name}: these claims were never 'not held' in {WORLDS} worlds: {never}"
