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
    """What the core knows of a framework without importing it: how to load its adapter, and what it can do."""

    adapter: str  # backends/<adapter>_backend.py
    needs: tuple[str, ...]  # modules that must be importable
    extra: str  # pip extra that installs them
    env: tuple[tuple[str, str], ...] = ()  # set in the run's process before the import
    fusable: bool = False  # the adapter has a FusedBackend (``--fused``)
    dist: str = ""  # the distribution whose version the runs record (default: the first module of needs)
    default: bool = True  # runs when --frameworks is not given (the Keras variants run when named)
    # What it cannot run, and why: "optimizer <name>", "momentum_form <form>", "schedule <name>" (a declared
    # one, bench/optimizers.py and bench/schedules.py) or "dtype <dtype>". A run that asks for it is refused before
    # anything runs; every other declared optimizer has a builder in the adapter (the contract test holds it to that).
    refuses: tuple[tuple[str, str], ...] = ()

    @property
    def distribution(self) -> str:
        return self.dist or self.needs[0]

    def refusal(self, spec) -> str | None:
        """Why this framework cannot run ``spec``, or None."""
        refused = dict(self.refuses)
        asks = (f"optimizer {spec.optimizer['name']}", f"momentum_form {spec.optimizer.get('momentum_form', 'torch')}",
                f"schedule {spec.schedule['name']}", f"dtype {spec.dtype}")
        return next((f"{what} ({refused[what]})" for what in asks if what in refused), None)


_ONE_FORM = "its SGD has PyTorch's momentum form only: v = m*v + g, p -= lr*v"
_NO_FLOAT64 = ("Keras's type promotion makes float64 float32 (keras.backend.result_type), so on torch each matmul "
               "is computed in float32: the run would not be float64")
FRAMEWORKS: dict[str, Framework] = {
    "torch": Framework("torch", ("torch",), "torch", fusable=True,
                       refuses=(("momentum_form keras", _ONE_FORM),)),
    "keras": Framework("keras", ("keras", "tensorflow"), "keras",
                       (("KERAS_BACKEND", "tensorflow"), ("TF_CPP_MIN_LOG_LEVEL", "2"))),
    "keras-jax": Framework("keras", ("keras", "jax"), "keras-jax", (("KERAS_BACKEND", "jax"),), default=False),
    "keras-torch": Framework("keras", ("keras", "torch"), "keras-torch", (("KERAS_BACKEND", "torch"),), default=False,
                             refuses=(("dtype float64", _NO_FLOAT64),)),
    "paddle": Framework("paddle", ("paddle",), "paddle", dist="paddlepaddle",
                        refuses=(("momentum_form keras", _ONE_FORM),)),
    "jax": Framework("jax", ("jax", "flax", "optax"), "jax", fusable=True),
}
# The framework every other is compared against, paired by seed (report and figures).
REFERENCE_FRAMEWORK = "torch"
# What runs when --frameworks is not given: each installed one of these.
DEFAULT_FRAMEWORKS = tuple(name for name, fw in FRAMEWORKS.items() if fw.default)


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
    """A run its framework refuses (``Framework.refuses``) is one line before the sweep, naming those that can."""
    for spec in specs:
        refusal = FRAMEWORKS[spec.framework].refusal(spec)
        if refusal:
            able = ", ".join(n for n, f in FRAMEWORKS.items() if f.refusal(spec) is None)
            raise BenchError(f"{spec.framework} cannot run {refusal} (study {spec.study!r}): drop that config for "
                             f"{spec.framework}, or run it with {able}")


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
