"""Cross-framework parity: same weights, same batches, same schedule -> same numbers.

Each framework runs in its own process (the runner's executor), so TensorFlow and Paddle never share one.
Needs torch and the framework compared.
"""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from backends import installed
from bench.executors import groups, run_local
from bench.results import COLUMNS
from bench.spec import RunSpec, optimizer_params

pytestmark = pytest.mark.env_parity  # the tox envs that run this file (see tests/conftest.py)

# The frameworks compared with torch: keras and paddle in the parity env; a Keras variant's and jax's own env names it.
OTHERS = os.environ.get("BENCH_PARITY", "keras,paddle").split(",")
STEPS = 50
# float32 Adam: steps within 1e-3 of torch, measured (keras, keras-jax and keras-torch 11, paddle 29, jax 50 of 50).
ADAM_FLOAT32_STEPS = {"keras": 10, "keras-jax": 10, "keras-torch": 10, "paddle": 25, "jax": 50}
# float64 (no rounding to hide behind): what is left is each framework's math.
FLOAT64 = {
    ("keras", "sgd"): (0, 1e-12),
    ("paddle", "adam"): (0, 1e-12),
    ("jax", "sgd"): (0, 1e-12),  # measured 3.9e-16
    ("jax", "adam"): (0, 1e-12),  # measured 5.6e-16
    # Paddle's Momentum keeps its coefficient in float32 (0.9 -> 0.89999998): torch given
    # that coefficient matches Paddle to 1e-15.
    ("paddle", "sgd"): (1e-9, 1e-6),
    # Keras adds Adam's epsilon before the bias correction: a real difference, 4e-2 by step 50.
    ("keras", "adam"): (1e-3, 1),
}


@pytest.fixture(params=OTHERS)
def other(request):
    assert installed("torch") and installed(request.param), f"parity needs torch and {request.param} installed"
    return request.param


def mnist_run(framework, optimizer, schedule=None, epochs=1, dtype="float32"):
    return RunSpec(study="parity", framework=framework, model="lenet", dataset="mnist", optimizer=optimizer_params(optimizer),
                   schedule=schedule or {"name": "constant"}, lr=0.01 if optimizer["name"] == "sgd" else 0.001,
                   batch_size=64, epochs=epochs, seed=0, device="cpu", train_size=STEPS * 64, val_size=2000,
                   normalize={"mean": [0.1307], "std": [0.3081]}, log_every=1, dtype=dtype)


def train_all(specs, data_dir):
    """Each run's rows, in the order given; the frameworks train at once, each in a process of its own, on a
    thread each."""
    frames = {}
    for outcome in run_local(groups(specs), data_dir, threads=1, jobs=2):
        assert outcome.manifest["status"] == "done", outcome.manifest["error"]
        frames[outcome.manifest["run_id"]] = pd.DataFrame(outcome.rows, columns=COLUMNS)
    return [frames[spec.run_id] for spec in specs]


def step_losses(df):
    return df[df["step"] != ""].sort_values("step")["value"].to_numpy(float)


def val_accuracy(df, epoch):
    return df[(df["split"] == "val") & (df["metric"] == "accuracy") & (df["epoch"] == epoch)]["value"].item()


def relative(a, b):
    return np.abs(a - b) / np.abs(b)


MOMENTUM, ADAM = {"name": "sgd", "momentum": 0.9}, {"name": "adam"}


@pytest.mark.parametrize("optimizer", [MOMENTUM, ADAM], ids=["momentum", "adam"])
def test_lenet_mnist_losses_follow_torch(other, optimizer, real_data_dir):
    torch_df, other_df = train_all([mnist_run(f, optimizer) for f in ("torch", other)], real_data_dir)
    diff = relative(step_losses(other_df)[:STEPS], step_losses(torch_df)[:STEPS])
    within = int(np.argmax(diff > 1e-3)) if (diff > 1e-3).any() else STEPS
    print(f"\n{other} vs torch, {optimizer['name']}, float32: max relative step-loss difference over {STEPS} steps "
          f"{diff.max():.2e}, within 1e-3 for the first {within} steps; epoch-1 val accuracy "
          f"{val_accuracy(other_df, 1):.4f} vs {val_accuracy(torch_df, 1):.4f}")
    assert abs(val_accuracy(other_df, 1) - val_accuracy(torch_df, 1)) <= 0.005 + 1e-12
    # Adam divides each update by the gradient's own scale, so the frameworks' different
    # float32 rounding of near-zero gradients grows step by step (the float64 test below
    # tells rounding from math); SGD keeps it at the rounding level.
    assert within >= (STEPS if optimizer is MOMENTUM else ADAM_FLOAT32_STEPS[other])


@pytest.mark.parametrize("optimizer", [MOMENTUM, ADAM], ids=["momentum", "adam"])
def test_same_math_in_float64(other, optimizer, real_data_dir):
    torch_df, other_df = train_all([mnist_run(f, optimizer, dtype="float64") for f in ("torch", other)], real_data_dir)
    diff = relative(step_losses(other_df)[:STEPS], step_losses(torch_df)[:STEPS])
    print(f"\n{other} vs torch, {optimizer['name']}, float64: max relative step-loss difference "
          f"over {STEPS} steps {diff.max():.2e}")
    low, high = FLOAT64[other, optimizer["name"]]
    assert low <= diff.max() < high


def test_keras_momentum_forms_under_a_step_schedule(real_data_dir):
    """lr drops 10x after epoch 1: torch's form follows torch, Keras's own form departs."""
    schedule = {"name": "step", "step_size": 1, "gamma": 0.1}
    sgd = {"name": "sgd", "momentum": 0.9}
    specs = [mnist_run("torch", sgd, schedule, 2), mnist_run("keras", sgd, schedule, 2),
             mnist_run("keras", {**sgd, "momentum_form": "keras"}, schedule, 2)]
    torch_df, torch_form, keras_form = (step_losses(df) for df in train_all(specs, real_data_dir))
    after = slice(STEPS, 2 * STEPS)  # the epoch after the lr change
    same = relative(torch_form[after], torch_df[after]).max()
    departs = relative(keras_form[after], torch_df[after]).max()
    print(f"\nafter the lr drop: torch form {same:.2e}, keras form {departs:.2e} max relative step-loss difference")
    assert relative(keras_form[:STEPS], torch_df[:STEPS]).max() < 1e-3  # identical while lr is constant
    assert same < 1e-3
    assert departs > 10 * same and departs > 1e-3


STUDY = """name = "mixed"
dataset = "digits"
model = "mlp"
epochs = 1
batch_size = 64
lr = 0.1
[grid]
lr = [0.1, 0.01]
"""


def test_tensorflow_and_paddle_runs_in_one_command(tmp_path):
    """TensorFlow and Paddle crash when imported in one process: each run has its own."""
    study = tmp_path / "mixed.toml"
    study.write_text(STUDY)
    proc = subprocess.run([sys.executable, "-m", "bench.cli", "run", str(study), "--frameworks", "torch,keras,paddle",
                           "--out", str(tmp_path / "out"), "--jobs", "2", "--no-plot"], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest = pd.read_csv(tmp_path / "out" / "mixed" / "manifest.csv")
    assert sorted(manifest["framework"]) == ["keras", "keras", "paddle", "paddle", "torch", "torch"]
    assert set(manifest["status"]) == {"done"}


def test_find_lr_on_the_schedules_study_agrees_across_frameworks(real_data_dir, tmp_path):
    """`bench find-lr schedules` on real Fashion-MNIST: every framework's loss within 1e-3 of torch's at
    every step before torch's lowest loss (where the loss starts to climb), and the suggestions within
    one grid step."""
    from bench.cli import main
    from bench.find_lr import AGREE, compare

    assert installed("keras") and installed("paddle")
    assert main(["find-lr", "schedules", "--frameworks", "torch,keras,paddle", "--data-dir", str(real_data_dir),
                 "--out", str(tmp_path)]) == 0
    df = pd.read_csv(tmp_path / "schedules-find-lr" / "find-lr.csv")
    loss = df[df["metric"] == "loss"].pivot_table(index="step", columns="framework", values="value")
    climb = loss["torch"].idxmin()
    assert climb > 50  # the descent is late: plain SGD learns nothing below lr 0.1 in so few steps
    for other in OTHERS:
        assert relative(loss[other].loc[:climb - 1], loss["torch"].loc[:climb - 1]).max() <= AGREE, other
    table = compare(df, "torch").set_index("framework")
    for column in ("steepest: grid steps from torch", "minimum: grid steps from torch"):
        assert table[column].abs().max() <= 1, table
