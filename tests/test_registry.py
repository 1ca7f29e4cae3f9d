"""The framework registry (backends/__init__.py), read without any framework: refusals and defaults."""

from dataclasses import replace
from types import SimpleNamespace

import pytest

import backends
from backends import DEFAULT_FRAMEWORKS, FRAMEWORKS, check_runs
from bench.errors import BenchError
from bench.spec import optimizer_params


def asks(optimizer: dict, schedule: str = "constant", framework: str = "torch", dtype: str = "float32"):
    return SimpleNamespace(optimizer=optimizer_params(optimizer), schedule={"name": schedule}, framework=framework,
                           study="s", dtype=dtype)


def test_a_refused_optimizer_form_or_schedule_is_named_with_its_reason():
    fw = replace(FRAMEWORKS["jax"], refuses=(("optimizer adagrad", "not mapped"), ("schedule cyclic", "no object")))
    assert fw.refusal(asks({"name": "adagrad"})) == "optimizer adagrad (not mapped)"
    assert fw.refusal(asks({"name": "sgd"}, "cyclic")) == "schedule cyclic (no object)"
    assert fw.refusal(asks({"name": "sgd", "momentum": 0.9, "momentum_form": "keras"})) is None
    assert FRAMEWORKS["torch"].refusal(asks({"name": "sgd", "momentum": 0.9, "momentum_form": "keras"})).startswith(
        "momentum_form keras (its SGD has PyTorch's momentum form only")
    assert FRAMEWORKS["keras-torch"].refusal(asks({"name": "sgd"}, dtype="float64")).startswith("dtype float64")
    assert FRAMEWORKS["keras-torch"].refusal(asks({"name": "sgd"})) is None


def test_bench_run_refuses_in_one_line_naming_the_frameworks_that_can(monkeypatch):
    monkeypatch.setitem(backends.FRAMEWORKS, "paddle", replace(FRAMEWORKS["paddle"], refuses=(("optimizer adam", "x"),)))
    check_runs([asks({"name": "adam"}, framework="torch")])
    with pytest.raises(BenchError) as e:
        check_runs([asks({"name": "adam"}, framework="torch"), asks({"name": "adam"}, framework="paddle")])
    assert str(e.value) == ("paddle cannot run optimizer adam (x) (study 's'): drop that config for paddle, or run it "
                            "with torch, keras, keras-jax, keras-torch, jax")


def test_the_defaults_are_the_registrys():
    assert DEFAULT_FRAMEWORKS == ("torch", "keras", "paddle", "jax")
    assert all(FRAMEWORKS[f].default for f in DEFAULT_FRAMEWORKS) and not FRAMEWORKS["keras-jax"].default
