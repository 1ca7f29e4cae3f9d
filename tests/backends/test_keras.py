"""The Keras backend (Keras 3 on TensorFlow): layouts, every schedule, every optimizer, the real runner."""

import numpy as np
import pandas as pd
import pytest

from bench.results import COLUMNS
from bench.runner import train
from bench.spec import RunSpec, optimizer_params
from tests.backends.contract import applied_lrs, mlp_logits_match_numpy, weights_round_trip
from tests.cases import SCHEDULE_CASES

FRAMEWORK = "keras"


@pytest.mark.parametrize("case", sorted(SCHEDULE_CASES))
def test_applied_lr_matches_reference(case):
    applied, expected = applied_lrs(FRAMEWORK, case)
    np.testing.assert_allclose(applied, expected, rtol=0, atol=1e-7)


def test_mlp_logits_match_a_numpy_forward_pass():
    mlp_logits_match_numpy(FRAMEWORK)


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
@pytest.mark.parametrize("model", ["lenet", "mlp"])
def test_weights_load_and_read_back_exactly(model, shape):
    weights_round_trip(FRAMEWORK, model, shape)


@pytest.mark.parametrize("optimizer", [{"name": "sgd", "momentum": 0.9}, {"name": "sgd", "momentum": 0.9, "momentum_form": "keras"},
                                       {"name": "sgd", "nesterov": True, "momentum": 0.9, "weight_decay": 1e-4},
                                       {"name": "adagrad"}, {"name": "adam"}, {"name": "rmsprop"}])
def test_every_optimizer_trains_the_lenet(optimizer):
    spec = RunSpec(study="t", framework=FRAMEWORK, model="lenet", dataset="digits", optimizer=optimizer_params(optimizer),
                   schedule={"name": "constant"}, lr=0.01 if optimizer["name"] == "sgd" else 0.001, batch_size=32,
                   epochs=2, seed=0, device="cpu", train_size=512, val_size=256)
    out = train(spec, threads=1)  # TensorFlow's threads are set once per process
    assert out.manifest["status"] == "done", out.manifest["error"]
    df = pd.DataFrame(out.rows, columns=COLUMNS)
    loss = df[(df["metric"] == "loss") & (df["split"] == "train")]["value"].tolist()
    assert loss[1] < loss[0]
