"""Shared data fixtures: the real offline datasets and a throwaway download cache."""

import os
from pathlib import Path

import pytest

# env_<tox env>: the tox env that runs a test (env_keras_jax: keras-jax)
ENVS = ("env_core", "env_torch", "env_keras", "env_keras_jax", "env_keras_torch", "env_paddle", "env_jax", "env_parity")


def pytest_collection_modifyitems(config, items):
    """Tests outside tests/frameworks/ are core; a backend test must name its envs (``pytestmark``), so none is left out."""
    for item in items:
        if "frameworks" not in item.path.parts:
            item.add_marker(pytest.mark.env_core)
        elif not any(item.get_closest_marker(env) for env in ENVS):
            raise pytest.UsageError(f"{item.nodeid} has no env marker: add pytestmark = pytest.mark.<{'|'.join(ENVS)}>")


def find_real_data() -> Path:
    """The folder holding the real datasets, found as `bench` finds them: BENCH_DATA_DIR, else the user
    cache, into which what is missing is downloaded from the canonical sources (checksummed)."""
    from bench.data import cache_dir, load_dataset

    env = os.environ.get("BENCH_DATA_DIR") or None
    for name in ("mnist", "fashion-mnist"):
        load_dataset(name, env, download=env is None)  # offline and missing: one line saying where to put which file
    return Path(env) if env else cache_dir()


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    from bench.errors import BenchError

    try:
        return find_real_data()
    except BenchError as e:
        pytest.fail(f"real test data: {e}", pytrace=False)


SIGNS_TEST_N = 120


def write_signs(path: Path, split: str, n: int, seed: int = 1) -> tuple:
    """A SIGNS h5 file in the exact format of the course's (uint8 NHWC 64x64x3 images, int64 labels 0-5)."""
    import h5py
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)
    y = np.arange(n, dtype=np.int64) % 6
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f[f"{split}_set_x"], f[f"{split}_set_y"], f["list_classes"] = x, y, np.arange(6)
    return x, y


def cifar_batch(n: int, seed: int, learnable: bool = False) -> dict:
    """One CIFAR-10 python batch as pickled by its authors: uint8 rows of 3072 (RGB planes), labels 0-9; ``learnable``:
    each image's brightness tells its class (noise on top), so that a model can learn it."""
    import numpy as np

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8) if not learnable else \
        (labels[:, None] * 20 + rng.integers(0, 60, (n, 3072))).astype(np.uint8)
    return {b"batch_label": b"x", b"data": data, b"labels": list(labels), b"filenames": [b"f"] * n}


def write_cifar(folder: Path, sizes: dict[str, int], learnable: bool = False) -> dict:
    """cifar-10-batches-py/ in ``folder``, each batch (data_batch_1..5, test_batch) of the size given (else 4)."""
    import pickle

    from bench import data

    (folder / "cifar-10-batches-py").mkdir(parents=True, exist_ok=True)
    batches = {b: cifar_batch(sizes.get(b, 4), i, learnable) for i, b in enumerate(data._CIFAR_BATCHES)}
    for name, batch in batches.items():
        (folder / "cifar-10-batches-py" / name).write_bytes(pickle.dumps(batch))
    return batches


@pytest.fixture(scope="session")
def signs_test_file(real_data_dir, tmp_path_factory) -> Path:
    """The real test_signs.h5 where it is at hand; else one written in its exact format (SIGNS has no
    download address, so a fresh clone cannot fetch it). See ``signs_checksum`` for the file's md5."""
    real = real_data_dir / "signs" / "test_signs.h5"
    if real.is_file():
        return real
    path = tmp_path_factory.mktemp("signs") / "test_signs.h5"
    write_signs(path, "test", SIGNS_TEST_N, seed=2)
    return path


@pytest.fixture
def signs_checksum(signs_test_file, monkeypatch) -> bool:
    """Whether ``signs_test_file`` is the real file; if it is not, lrbench is told its md5 (checksums stay checked)."""
    from bench import data

    real = data._md5_file(signs_test_file) == data._MD5["signs/test_signs.h5"]
    if not real:
        monkeypatch.setitem(data._MD5, "signs/test_signs.h5", data._md5_file(signs_test_file))
    return real


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch) -> Path:
    """Point HOME and XDG_CACHE_HOME at a temp dir so tests never touch the user's cache."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("BENCH_DATA_DIR", raising=False)
    return tmp_path / "xdg" / "lrbench"
