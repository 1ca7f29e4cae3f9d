"""One adapter per framework, found by convention: ``backends/<name>_backend.py`` defines ``Backend``."""

from __future__ import annotations

import importlib
import importlib.util

from bench.errors import BenchError

# framework name -> (module it needs importable, pip extra that installs it)
FRAMEWORKS: dict[str, tuple[str, str]] = {
    "torch": ("torch", "torch"),
    "keras": ("keras", "keras"),
    "paddle": ("paddle", "paddle"),
}


def installed(name: str) -> bool:
    module, _ = FRAMEWORKS[name]
    return importlib.util.find_spec(module) is not None and importlib.util.find_spec(
        f"backends.{name}_backend"
    ) is not None


def check_frameworks(names: list[str]) -> None:
    """One clear line for an unknown or missing framework, before any run starts."""
    for name in names:
        if name not in FRAMEWORKS:
            raise BenchError(f"unknown framework {name!r}: choose from {', '.join(FRAMEWORKS)}")
        if not installed(name):
            raise BenchError(f"framework {name!r} is not installed: pip install -e \".[{FRAMEWORKS[name][1]}]\"")


def load_backend(name: str):
    """Import the adapter (and so its framework) in this process only."""
    return importlib.import_module(f"backends.{name}_backend").Backend()
