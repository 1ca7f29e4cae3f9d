"""What every backend must do, checked for the frameworks under test.

The frameworks are those named in BENCH_FRAMEWORKS (each tox env names its own), else
every installed one; a named framework that is not installed fails, it is not skipped.
The tests run in this process, so TensorFlow (keras) and Paddle go in separate runs.
"""

import os

import numpy as np
import pandas as pd
import pytest

from backends import DEFAULT_FRAMEWORKS, installed, load_adapter
from bench.data import load_dataset
from bench.results import COLUMNS
from bench.runner import train
from bench.spec import RunSpec, optimizer_params
from tests.backends.contract import applied_lrs, mlp_logits_match_numpy, weights_round_trip
from tests.cases import SCHEDULE_CASES

NAMED = os.environ.get("BENCH_FRAMEWORKS")
FRAMEWORKS = NAMED.split(",") if NAMED else [f for f in DEFAULT_FRAMEWORKS if installed(f)]
assert not {"keras", "paddle"} <= set(FRAMEWORKS), (
    "TensorFlow and Paddle crash in one process: set BENCH_FRAMEWORKS to torch,keras or torch,paddle")
LR_TOLERANCE = {"torch": 1e-9}  # the others compute some schedules in float32 arithmetic
OPTIMIZERS = [
    {"name": "sgd", "momentum": 0.9},
    {"name": "sgd", "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4},
    {"name": "adagrad"},
    {"name": "adam"},
    {"name": "rmsprop"},
]


@pytest.fixture(params=FRAMEWORKS)
def framework(request):
    assert installed(request.param), f"{request.param} is not installed in this environment"
    return request.param


@pytest.mark.parametrize("case", sorted(SCHEDULE_CASES))
def test_applied_lr_matches_reference(framework, case):
    applied, expected = applied_lrs(framework, case)
    np.testing.assert_allclose(applied, expected, rtol=0, atol=LR_TOLERANCE.get(framework, 1e-7))


def test_mlp_logits_match_a_numpy_forward_pass(framework):
    mlp_logits_match_numpy(framework)


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
@pytest.mark.parametrize("model", ["lenet", "mlp"])
def test_weights_load_and_read_back_exactly(framework, model, shape):
    weights_round_trip(framework, model, shape)


@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=lambda o: "-".join(f"{v}" for v in o.values()))
def test_every_optimizer_trains_the_lenet(framework, optimizer):
    spec = RunSpec(study="t", framework=framework, model="lenet", dataset="digits", optimizer=optimizer_params(optimizer),
                   schedule={"name": "constant"}, lr=0.01 if optimizer["name"] == "sgd" else 0.001, batch_size=32,
                   epochs=2, seed=0, device="cpu", train_size=512, val_size=256)
    out = train(spec, threads=1)  # the contract helpers set 1 thread; TensorFlow sets its threads once a process
    assert out.manifest["status"] == "done", out.manifest["error"]
    df = pd.DataFrame(out.rows, columns=COLUMNS)
    loss = df[(df["metric"] == "loss") & (df["split"] == "train")]["value"].tolist()
    assert loss[1] < loss[0]


def test_perf_baselines_time_lenet_epochs(framework):
    """`bench perf`'s hand-written loops run in every framework (on 512 digits, as MNIST-shaped images)."""
    data = load_dataset("digits", train_size=512, val_size=256)
    assert data.train_x.shape[1:] == (1, 28, 28)
    baselines = load_adapter(framework).PERF_BASELINES
    assert "hand" in baselines
    for way, loop in baselines.items():
        seconds = loop(data.train_x, data.train_y, 2, "cpu")
        assert len(seconds) == 2 and all(s > 0 for s in seconds), way
