"""Shared data fixtures: the real offline datasets and a throwaway download cache."""

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The real dataset files (BENCH_DATA_DIR, else ../shared/data beside the repo)."""
    env = os.environ.get("BENCH_DATA_DIR")
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    if not (path / "mnist").is_dir():
        pytest.fail(f"real test data not found at {path}: set BENCH_DATA_DIR to the folder holding mnist/, fashion-mnist/, signs/")
    return path


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch) -> Path:
    """Point HOME and XDG_CACHE_HOME at a temp dir so tests never touch the user's cache."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("BENCH_DATA_DIR", raising=False)
    return tmp_path / "xdg" / "lrbench"
