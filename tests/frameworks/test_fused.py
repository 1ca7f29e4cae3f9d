"""--fused: runs that differ only in lr or schedule train as one model, each member exactly as if alone.

The tests marked env_jax too run for the fusable framework the env names (torch's vmap-free fused model,
JAX's vmapped step); the rest are torch's own."""

import os

import numpy as np
import pandas as pd
import pytest

from bench.cli import main
from bench.results import ROWS
from bench.runner import train, train_group
from bench.spec import RunSpec, optimizer_params

from .test_torch import STUDY, deterministic

pytestmark = pytest.mark.env_torch  # the tox envs that run this file (see tests/conftest.py)

LRS = (0.1, 0.01, 0.001, 0.0001)
FRAMEWORK = os.environ.get("BENCH_FRAMEWORKS", "torch").split(",")[0]  # the env's framework (fusable)


def sweep(model, **kw):
    """The lr-sweep's four lrs on MNIST; the second member also on a step schedule."""
    base = dict(study="fused", framework=FRAMEWORK, model=model, dataset="mnist", batch_size=64, epochs=1, seed=0,
                optimizer=optimizer_params({"name": "sgd", "momentum": 0.5}), schedule={"name": "constant"},
                lr=0.1, device="cpu", log_every=1, **kw)
    specs = [RunSpec(**{**base, "lr": lr}) for lr in LRS]
    specs[1] = RunSpec(**{**base, "lr": LRS[1], "schedule": {"name": "step", "step_size": 1, "gamma": 0.5}})
    return specs


def step_losses(outcome):
    return np.array([r["value"] for r in outcome.rows if r["step"] != ""])


# How far a member's step losses may be from its run alone: the MLP's stacked layers sum in another order
# (float32 rounding); on a CPU each member's LeNet runs its own forward, so it is its run alone exactly.
MEMBER_TOLERANCE = {"mlp": 1e-5, "lenet": 0.0}


@pytest.mark.env_jax
@pytest.mark.parametrize("model,train_size", [("mlp", 6400), ("lenet", 1920)])
def test_fused_members_equal_runs_alone_over_the_first_epoch(model, train_size, real_data_dir):
    specs = sweep(model, train_size=train_size)
    fused = train_group(specs, real_data_dir, threads=1)
    for spec, member in zip(specs, fused):
        alone = train(spec, real_data_dir, threads=1)
        assert member.manifest["status"] == alone.manifest["status"] == "done", member.manifest["error"]
        assert member.manifest["fused"] == 4 and alone.manifest["fused"] == 1
        a, b = step_losses(member), step_losses(alone)
        assert len(a) == len(b) == -(-train_size // 64)
        np.testing.assert_allclose(a, b, rtol=0, atol=MEMBER_TOLERANCE[model], err_msg=f"lr {spec.lr}")
        epoch = lambda o: {(r["split"], r["metric"]): r["value"]  # noqa: E731
                           for r in o.rows if r["step"] == "" and "seconds" not in r["metric"]}
        assert epoch(member).keys() == epoch(alone).keys()
        for key, value in epoch(alone).items():
            assert epoch(member)[key] == pytest.approx(value, rel=1e-4, abs=1e-5), key
    losses = [step_losses(m)[-1] for m in fused]
    assert losses[0] < losses[2] < losses[3]  # the members really trained with their own lrs


@pytest.mark.env_jax
def test_cli_fused_sweep_writes_the_rows_of_separate_runs(tmp_path):
    study = tmp_path / "resume.toml"
    study.write_text(STUDY)
    assert main(["run", str(study), "--frameworks", FRAMEWORK, "--out", str(tmp_path / "alone"), "--no-plot"]) == 0
    assert main(["run", str(study), "--frameworks", FRAMEWORK, "--out", str(tmp_path / "fused"), "--fused",
                 "--no-plot"]) == 0
    alone = deterministic(tmp_path / "alone" / "resume" / ROWS)
    fused = deterministic(tmp_path / "fused" / "resume" / ROWS)
    pd.testing.assert_frame_equal(alone.drop(columns="value"), fused.drop(columns="value"))
    np.testing.assert_allclose(fused["value"], alone["value"], rtol=1e-4, atol=1e-5)
    manifest = pd.read_csv(tmp_path / "fused" / "resume" / "manifest.csv")
    assert set(manifest["fused"]) == {4} and set(manifest["status"]) == {"done"}


def test_grouped_lenet_layers_compute_each_members_lenet(real_data_dir):
    """The grouped LeNet (used on GPUs) gives each member the logits of its own LeNet."""
    import torch

    from backends.torch_backend import FusedBackend, fused_lenet
    from bench.data import load_dataset
    from bench.init import initial_weights
    from bench.models import architecture

    data = load_dataset("mnist", real_data_dir, train_size=256, val_size=10)
    arch = architecture("lenet", data.input_shape, data.classes)
    backend = FusedBackend()
    backend.setup("cpu", 1, 0)
    backend.set_data(data.train_x, data.train_y, data.val_x, data.val_y)
    backend.build(arch, initial_weights(arch, 0), optimizer_params({"name": "sgd"}), [0.1] * 3)
    with torch.no_grad():
        for k, p in enumerate(backend.params):  # make the members differ
            p["conv2.weight"].mul_(1 + k)
        per_member = backend.forward(backend.train_x[:64])
        backend.grouped = fused_lenet
        grouped = backend.forward(backend.train_x[:64])
    assert grouped.shape == (3, 64, 10)
    assert not torch.allclose(per_member[0], per_member[1])
    torch.testing.assert_close(grouped, per_member, rtol=1e-5, atol=1e-5)


def _protocol_names(protocol) -> set[str]:
    return {n for n in vars(protocol) if not n.startswith("_")} | set(getattr(protocol, "__annotations__", {}))


@pytest.mark.env_jax
def test_fused_backend_implements_the_protocol():
    """backends/base.py's FusedBackend says what --fused asks of an adapter; the adapter's has all of it, and
    sets, holds and evaluates each member by its index."""
    from backends import base, load_backend
    from bench.init import initial_weights
    from bench.models import architecture

    fused = load_backend(FRAMEWORK, fused=True)
    missing = {n for n in _protocol_names(base.FusedBackend) if not hasattr(fused, n)}
    assert not missing
    fused.setup("cpu", 1, 0)
    arch = architecture("mlp", (1, 8, 8), 10)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 10, 16)
    fused.set_data(x, y, x, y)
    fused.build(arch, initial_weights(arch, 0), optimizer_params({"name": "sgd"}), [0.1, 0.1])
    assert fused.set_lr(1, 0.25) == pytest.approx(0.25) and fused.set_lr(0, 0.1) == pytest.approx(0.1)
    results = fused.train_steps(np.arange(16), 8)
    assert len(results) == 2 and results[0].batch_losses[0] == pytest.approx(results[1].batch_losses[0])
    assert results[0].batch_losses[1] != pytest.approx(results[1].batch_losses[1])  # member 1 stepped at its own lr
    assert fused.evaluate(1, 8).loss_sum != pytest.approx(fused.evaluate(0, 8).loss_sum)
    assert fused.weights(1).keys() == initial_weights(arch, 0).keys()
