"""One adapter per framework, found by convention: ``backends/<name>_backend.py`` defines ``Backend``."""

from __future__ import annotations

import importlib
import importlib.util
import os
import warnings
from dataclasses import dataclass

from bench.errors import BenchError


@dataclass(frozen=True)
class Framework:
    adapter: str  # backends/<adapter>_backend.py
    needs: tuple[str, ...]  # modules that must be importable
    extra: str  # pip extra that installs them
    env: tuple[tuple[str, str], ...] = ()  # set in the run's process before the import
    fusable: bool = False  # the adapter has a FusedBackend (``--fused``)
    dist: str = ""  # the distribution whose version the runs record (default: the first module of needs)
    momentum_forms: tuple[str, ...] = ("torch",)  # SGD momentum forms its optimizer has (see bench/spec.py)
    style: tuple = ("#777777", (2, 2), "X")  # its colour, line dashes and marker in every comparison figure

    @property
    def distribution(self) -> str:
        return self.dist or self.needs[0]


FRAMEWORKS: dict[str, Framework] = {
    "torch": Framework("torch", ("torch",), "torch", fusable=True, style=("#e4572e", "", "o")),
    "keras": Framework("keras", ("keras", "tensorflow"), "keras",
                       (("KERAS_BACKEND", "tensorflow"), ("TF_CPP_MIN_LOG_LEVEL", "2")),
                       momentum_forms=("torch", "keras"), style=("#2e86ab", (4, 1.5), "s")),
    "keras-jax": Framework("keras", ("keras", "jax"), "keras-jax", (("KERAS_BACKEND", "jax"),),
                           momentum_forms=("torch", "keras"), style=("#7b2cbf", (3, 1.2, 1, 1.2), "D")),
    "keras-torch": Framework("keras", ("keras", "torch"), "keras-torch", (("KERAS_BACKEND", "torch"),),
                             momentum_forms=("torch", "keras"), style=("#f2a541", (6, 2), "v")),
    "paddle": Framework("paddle", ("paddle",), "paddle", dist="paddlepaddle", style=("#3bb273", (1, 1), "^")),
    "jax": Framework("jax", ("jax", "flax", "optax"), "jax", fusable=True, momentum_forms=("torch", "keras"),
                     style=("#8c564b", (5, 1, 1, 1), "P")),
}
# The framework every other is compared against, paired by seed (report and figures).
REFERENCE_FRAMEWORK = "torch"
# What runs when --frameworks is not given (the Keras variants run when named).
DEFAULT_FRAMEWORKS = ("torch", "keras", "paddle")


def installed(name: str) -> bool:
    fw = FRAMEWORKS[name]
    modules = (*fw.needs, f"backends.{fw.adapter}_backend")
    return all(importlib.util.find_spec(m) is not None for m in modules)


def check_frameworks(names: list[str]) -> None:
    """One clear line for an unknown or missing framework, before any run starts."""
    for name in names:
        if name not in FRAMEWORKS:
            raise BenchError(f"unknown framework {name!r}: choose from {', '.join(FRAMEWORKS)}")
        if not installed(name):
            needs = " and ".join(FRAMEWORKS[name].needs)
            raise BenchError(f"framework {name!r} is not installed (needs {needs}): "
                             f"pip install -e \".[{FRAMEWORKS[name].extra}]\"")


def check_runs(specs) -> None:
    """A run a framework cannot do (an SGD momentum form its optimizer lacks) is refused before the sweep."""
    for spec in specs:
        form = spec.optimizer.get("momentum_form", "torch")
        if form not in FRAMEWORKS[spec.framework].momentum_forms:
            raise BenchError(f"{spec.framework} has no SGD momentum form {form!r} (study {spec.study!r}): drop "
                             f"momentum_form for {spec.framework}, or run that config with "
                             + ", ".join(n for n, f in FRAMEWORKS.items() if form in f.momentum_forms))


def _import(name: str, module: str):
    """A module of framework ``name``'s adapter, imported in this process. The warnings a framework gives while
    it imports concern its own build (Paddle's "No ccache found"), not the run: they are not shown."""
    fw = FRAMEWORKS[name]
    os.environ.update(dict(fw.env))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return importlib.import_module(f"backends.{fw.adapter}_{module}")


def load_adapter(name: str):
    """The adapter module of framework ``name``, imported (and so its framework) in this process only."""
    return _import(name, "backend")


def load_baselines(name: str) -> dict:
    """``bench perf``'s hand-written loops of framework ``name`` (``backends/<adapter>_baselines.py``)."""
    return _import(name, "baselines").BASELINES


def load_backend(name: str, fused: bool = False):
    """A fresh ``Backend`` of framework ``name`` (see ``load_adapter``).

    ``fused``: the adapter's ``FusedBackend``, which trains several runs that differ
    only in lr or schedule as one model (``--fused``; see ``Framework.fusable``)."""
    if fused and not FRAMEWORKS[name].fusable:
        raise BenchError(f"--fused: {name} has no fused backend (torch has): drop --fused for {name}")
    module = load_adapter(name)
    backend = module.FusedBackend() if fused else module.Backend()
    backend.name = name
    return backend
