"""Data loading: real files where we have them, small files in the exact formats elsewhere."""

import gzip
import hashlib
import io
import pickle
import shutil
import struct
import tarfile

import h5py
import numpy as np
import pytest

from bench import data
from bench.data import DATASETS, data_available, load_dataset
from bench.errors import DataError
from tests.conftest import cifar_batch, write_cifar, write_signs

MNIST_TRAIN_IMAGES = "train-images-idx3-ubyte.gz"


# --------------------------------------------------------------------------- helpers


def write_idx(path, arr, dtype_code=0x08, dims=None):
    """A gzip'd IDX file; ``dims`` overrides the header to fake a mismatch."""
    dims = arr.shape if dims is None else dims
    header = bytes([0, 0, dtype_code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(header + arr.astype(">u1").tobytes()))


def write_small_mnist(root, name="mnist", n_train=12, n_val=5):
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": np.arange(n_train, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_val, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": np.arange(n_val, dtype=np.uint8) % 10,
    }
    for fname, arr in arrays.items():
        write_idx(root / name / fname, arr)
    return arrays


def cifar_batches():
    return {b: cifar_batch(4, i) for i, b in enumerate(data._CIFAR_BATCHES)}


def md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- real MNIST / Fashion-MNIST


@pytest.fixture(scope="module")
def mnist(real_data_dir):
    return load_dataset("mnist", real_data_dir, download=False)


def test_mnist_real(mnist):
    assert mnist.train_x.shape == (60000, 1, 28, 28) and mnist.val_x.shape == (10000, 1, 28, 28)
    assert mnist.train_x.dtype == np.float32 and mnist.train_y.dtype == np.int64
    assert mnist.val_y.dtype == np.int64 and mnist.input_shape == (1, 28, 28)
    assert mnist.train_x.min() == 0.0 and mnist.train_x.max() == 1.0
    assert mnist.classes == 10
    assert np.bincount(mnist.train_y, minlength=10).sum() == 60000
    assert set(np.unique(mnist.val_y)) == set(range(10))
    assert abs(float(mnist.train_x.mean()) - 0.1307) < 1e-3


def test_mnist_mean_std_and_subsets(mnist, real_data_dir):
    d = load_dataset("mnist", real_data_dir, normalize={"mean": [0.1307], "std": [0.3081]},
                     train_size=1000, val_size=200, download=False)
    assert d.train_x.shape == (1000, 1, 28, 28) and d.val_y.shape == (200,)
    np.testing.assert_allclose(d.train_x, (mnist.train_x[:1000] - 0.1307) / 0.3081, atol=1e-5)
    np.testing.assert_array_equal(d.val_y, mnist.val_y[:200])
    full = (mnist.train_x - np.float32(0.1307)) / np.float32(0.3081)
    assert abs(float(full.mean())) < 0.01 and abs(float(full.std()) - 1.0) < 0.02


def test_fashion_real(real_data_dir):
    d = load_dataset("fashion-mnist", real_data_dir, download=False)
    assert d.train_x.shape == (60000, 1, 28, 28) and d.val_x.shape == (10000, 1, 28, 28)
    assert d.train_x.dtype == np.float32 and d.train_y.dtype == np.int64
    assert 0.0 <= d.train_x.min() and d.train_x.max() <= 1.0
    assert list(np.bincount(d.train_y)) == [6000] * 10
    assert list(np.bincount(d.val_y)) == [1000] * 10


def test_size_larger_than_split(real_data_dir):
    with pytest.raises(DataError, match="only 10000"):
        load_dataset("mnist", real_data_dir, val_size=10001, download=False)


def test_truncated_real_file(real_data_dir, isolated_cache, tmp_path):
    for f in data._IDX_NAMES.values():
        (tmp_path / "d" / "mnist").mkdir(parents=True, exist_ok=True)
        shutil.copy(real_data_dir / "mnist" / f, tmp_path / "d" / "mnist" / f)
    target = tmp_path / "d" / "mnist" / MNIST_TRAIN_IMAGES
    target.chmod(0o644)
    with open(target, "r+b") as fh:
        fh.truncate(1_000_000)
    with pytest.raises(DataError) as err:
        load_dataset("mnist", tmp_path / "d")
    msg = str(err.value)
    assert "mnist/" + MNIST_TRAIN_IMAGES in msg and "f68b3c2dcbeaaa9fbdd348bbdeb94873" in msg
    assert "\n" not in msg
    # Without the md5 check the gzip/IDX structure still rejects it.
    with pytest.raises(DataError, match=MNIST_TRAIN_IMAGES):
        load_dataset("mnist", tmp_path / "d", verify=False)


def test_real_files_found_through_env(real_data_dir, isolated_cache, monkeypatch):
    monkeypatch.setenv("BENCH_DATA_DIR", str(real_data_dir))
    assert data_available("mnist") is None
    d = load_dataset("mnist", train_size=10, val_size=10, download=False)
    assert d.train_x.shape == (10, 1, 28, 28)


# --------------------------------------------------------------------------- small IDX files


def test_small_idx_files(tmp_path, isolated_cache):
    arrays = write_small_mnist(tmp_path)
    d = load_dataset("mnist", tmp_path, verify=False)
    assert d.train_x.shape == (12, 1, 28, 28) and d.val_x.shape == (5, 1, 28, 28)
    np.testing.assert_allclose(d.train_x[:, 0], arrays[MNIST_TRAIN_IMAGES] / 255.0, atol=1e-7)
    np.testing.assert_array_equal(d.train_y, np.arange(12) % 10)
    # The same small files fail the published checksum.
    with pytest.raises(DataError, match="expected f68b3c2dcbeaaa9fbdd348bbdeb94873"):
        load_dataset("mnist", tmp_path)


@pytest.mark.parametrize("dims, dtype_code, match", [
    ((13, 28, 28), 0x08, "IDX header"),      # header promises more images than stored
    ((12, 28, 28), 0x42, "magic number"),    # unknown dtype code
    ((12, 784), 0x08, "expected uint8"),     # wrong image shape
])
def test_bad_idx_header(tmp_path, isolated_cache, dims, dtype_code, match):
    arrays = write_small_mnist(tmp_path)
    write_idx(tmp_path / "mnist" / MNIST_TRAIN_IMAGES, arrays[MNIST_TRAIN_IMAGES], dtype_code, dims)
    with pytest.raises(DataError, match=match):
        load_dataset("mnist", tmp_path, verify=False)


def test_not_gzip(tmp_path, isolated_cache):
    write_small_mnist(tmp_path)
    (tmp_path / "mnist" / MNIST_TRAIN_IMAGES).write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="not a valid gzip"):
        load_dataset("mnist", tmp_path, verify=False)


def test_label_count_mismatch(tmp_path, isolated_cache):
    write_small_mnist(tmp_path)
    write_idx(tmp_path / "mnist" / "train-labels-idx1-ubyte.gz", np.zeros(11, np.uint8))
    with pytest.raises(DataError, match="labels"):
        load_dataset("mnist", tmp_path, verify=False)


# --------------------------------------------------------------------------- CIFAR-10


def check_cifar(d, batches):
    first = batches["data_batch_1"][b"data"][0]
    assert d.train_x.shape == (20, 3, 32, 32) and d.val_x.shape == (4, 3, 32, 32)
    assert d.input_shape == (3, 32, 32)
    # Row layout is 1024 R, then 1024 G, then 1024 B values, each row-major 32x32.
    for c in range(3):
        assert d.train_x[0, c, 5, 7] == pytest.approx(first[c * 1024 + 5 * 32 + 7] / 255.0)
    np.testing.assert_array_equal(d.val_y, batches["test_batch"][b"labels"])
    np.testing.assert_array_equal(d.train_y[4:8], batches["data_batch_2"][b"labels"])


def test_cifar_batches_dir(tmp_path, isolated_cache):
    batches = write_cifar(tmp_path / "cifar-10", {})
    check_cifar(load_dataset("cifar-10", tmp_path, verify=False), batches)
    assert data_available("cifar-10", tmp_path) is None
    with pytest.raises(DataError, match="c99cafc152244af753f735de768cd75f"):
        load_dataset("cifar-10", tmp_path)


def test_cifar_tar(tmp_path, isolated_cache):
    batches = cifar_batches()
    (tmp_path / "cifar-10").mkdir()
    with tarfile.open(tmp_path / "cifar-10" / "cifar-10-python.tar.gz", "w:gz") as tar:
        for name, b in batches.items():
            raw = pickle.dumps(b)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    check_cifar(load_dataset("cifar-10", tmp_path, normalize="unit", verify=False), batches)


def test_cifar_bad_pickle(tmp_path, isolated_cache):
    folder = tmp_path / "cifar-10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, b in cifar_batches().items():
        (folder / name).write_bytes(pickle.dumps({b"labels": b[b"labels"]}))
    with pytest.raises(DataError, match="data_batch_1"):
        load_dataset("cifar-10", tmp_path, verify=False)


def test_cifar_missing(tmp_path, isolated_cache):
    # A folder with only batches.meta (as the shared data has): not usable, and nothing may be downloaded.
    (tmp_path / "cifar-10" / "cifar-10-batches-py").mkdir(parents=True)
    (tmp_path / "cifar-10" / "cifar-10-batches-py" / "batches.meta").write_bytes(pickle.dumps({"label_names": []}))
    reason = data_available("cifar-10", tmp_path)
    assert "cifar-10-python.tar.gz" in reason and str(tmp_path / "cifar-10") in reason
    names = ", ".join([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"])
    assert f"cifar-10-batches-py/ is missing 6 files ({names}): extract them there" in reason  # not "not found"
    (tmp_path / "cifar-10" / "cifar-10-batches-py" / "test_batch").write_bytes(b"")
    assert "is missing 5 files (data_batch_1," in data_available("cifar-10", tmp_path)
    with pytest.raises(DataError, match="cifar-10-python.tar.gz"):
        load_dataset("cifar-10", tmp_path, download=False)


def test_cifar_not_there_at_all(tmp_path, isolated_cache):
    reason = data_available("cifar-10", tmp_path)
    assert reason.startswith("CIFAR-10 not found: put cifar-10-python.tar.gz in") and "missing" not in reason


# --------------------------------------------------------------------------- SIGNS


def write_train_signs(path, n=1080):
    return write_signs(path, "train", n)


def test_signs(signs_test_file, signs_checksum, tmp_path, isolated_cache):
    x, y = write_train_signs(tmp_path / "signs" / "train_signs.h5")
    (tmp_path / "signs" / "test_signs.h5").symlink_to(signs_test_file)
    assert data_available("signs", tmp_path) is None
    d = load_dataset("signs", tmp_path)
    assert d.train_x.shape == (1080, 3, 64, 64) and d.val_x.shape == (120, 3, 64, 64)
    assert d.classes == 6 and d.input_shape == (3, 64, 64)
    assert d.train_x[3, 2, 10, 20] == pytest.approx(x[3, 10, 20, 2] / 255.0)  # NHWC -> NCHW
    np.testing.assert_array_equal(d.train_y, y)
    assert list(np.bincount(d.val_y)) == [20] * 6


def test_signs_test_file_checksum_is_checked(signs_test_file, signs_checksum, tmp_path, isolated_cache):
    write_train_signs(tmp_path / "signs" / "train_signs.h5")
    (tmp_path / "signs" / "test_signs.h5").write_bytes(signs_test_file.read_bytes()[:-1] + b"x")
    with pytest.raises(DataError, match="test_signs.h5"):
        load_dataset("signs", tmp_path)


def test_signs_train_wrong_size(signs_test_file, signs_checksum, tmp_path, isolated_cache):
    write_train_signs(tmp_path / "signs" / "train_signs.h5", n=12)
    (tmp_path / "signs" / "test_signs.h5").symlink_to(signs_test_file)
    with pytest.raises(DataError, match="expected 1080"):
        load_dataset("signs", tmp_path)
    assert load_dataset("signs", tmp_path, verify=False).train_x.shape == (12, 3, 64, 64)
    with h5py.File(tmp_path / "signs" / "train_signs.h5", "a") as f:
        del f["train_set_y"]
    with pytest.raises(DataError, match="train_set_y"):
        load_dataset("signs", tmp_path, verify=False)


def test_a_signs_group_or_float_labels_are_named(signs_test_file, signs_checksum, tmp_path, isolated_cache):
    """An HDF5 group where the images belong once raised a TypeError; float labels were called 'outside 0..5'."""
    write_train_signs(tmp_path / "signs" / "train_signs.h5", n=12)
    (tmp_path / "signs" / "test_signs.h5").symlink_to(signs_test_file)
    path = tmp_path / "signs" / "train_signs.h5"
    with h5py.File(path, "a") as f:
        labels = f["train_set_y"][()]
        del f["train_set_y"]
        f["train_set_y"] = labels.astype(np.float64)
    with pytest.raises(DataError, match="has float64 labels where integer class indices 0..5 belong"):
        load_dataset("signs", tmp_path, verify=False)
    with h5py.File(path, "a") as f:
        del f["train_set_x"]
        f.create_group("train_set_x")
    with pytest.raises(DataError, match="holds train_set_x as an HDF5 group, not a dataset"):
        load_dataset("signs", tmp_path, verify=False)


def test_signs_missing_train(signs_test_file, tmp_path, isolated_cache):
    (tmp_path / "signs").mkdir()
    (tmp_path / "signs" / "test_signs.h5").symlink_to(signs_test_file)  # the test file alone, as the shared data has it
    reason = data_available("signs", tmp_path)
    assert "train_signs.h5" in reason and str(tmp_path / "signs") in reason
    with pytest.raises(DataError) as err:
        load_dataset("signs", tmp_path)
    msg = str(err.value)
    assert "train_signs.h5" in msg and str(tmp_path / "signs") in msg and str(isolated_cache / "signs") in msg


# --------------------------------------------------------------------------- digits and arguments


def test_digits():
    d = load_dataset("digits")
    assert d.train_x.shape == (1437, 1, 28, 28) and d.val_x.shape == (360, 1, 28, 28)
    assert d.train_x.dtype == np.float32 and d.train_y.dtype == np.int64
    assert d.train_x.min() == 0.0 and d.train_x.max() == 1.0 and d.classes == 10
    for x in (d.train_x, d.val_x):
        assert not x[:, :, :2].any() and not x[:, :, -2:].any()
        assert not x[:, :, :, :2].any() and not x[:, :, :, -2:].any()
    # Each 8x8 pixel becomes a 3x3 block.
    block = d.train_x[0, 0, 2:26, 2:26].reshape(8, 3, 8, 3)
    assert (block == block[:, :1, :, :1]).all()
    assert data_available("digits") is None


def test_bad_arguments():
    with pytest.raises(DataError, match="unit"):
        load_dataset("digits", normalize="imagenet")
    with pytest.raises(DataError, match="one per channel"):
        load_dataset("digits", normalize={"mean": [0.1, 0.2], "std": [0.3, 0.3]})
    with pytest.raises(DataError, match="mnist"):
        load_dataset("imagenet")
    with pytest.raises(DataError, match="positive integer"):
        load_dataset("digits", train_size=0)
    d = load_dataset("digits", normalize={"mean": [0.5], "std": [0.5]}, train_size=7)
    assert d.train_x.shape[0] == 7 and d.train_x.min() == -1.0


def test_every_missing_file_is_named_in_one_line(tmp_path, isolated_cache, real_data_dir):
    """Offline, with two of MNIST's four files in place: one line names the other two and where they go."""
    (tmp_path / "mnist").mkdir()
    for f in list(data._IDX_NAMES.values())[:2]:
        (tmp_path / "mnist" / f).symlink_to(real_data_dir / "mnist" / f)
    with pytest.raises(DataError) as err:
        load_dataset("mnist", tmp_path, download=False)
    msg = str(err.value)
    assert msg.startswith("mnist is missing 2 files (t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz): put them in "
                          f"{tmp_path / 'mnist'}/ or {isolated_cache / 'mnist'}/") and "\n" not in msg
    assert "train-" not in msg


def test_data_available_missing(tmp_path, isolated_cache):
    assert set(DATASETS) == {"mnist", "fashion-mnist", "cifar-10", "signs", "digits"}
    reason = data_available("fashion-mnist", tmp_path)
    assert "fashion-mnist is missing 4 files" in reason and all(f in reason for f in data._IDX_NAMES.values())
    assert f"put them in {tmp_path / 'fashion-mnist'}/ or {isolated_cache / 'fashion-mnist'}/" in reason
    assert "does not exist" in data_available("mnist", tmp_path / "nope")


# --------------------------------------------------------------------------- downloads


@pytest.fixture
def fake_remote(tmp_path, monkeypatch):
    """Serve small MNIST files from file:// URLs with their own md5s."""
    arrays = write_small_mnist(tmp_path / "remote")
    for fname in arrays:
        src = tmp_path / "remote" / "mnist" / fname
        monkeypatch.setitem(data._URLS, f"mnist/{fname}", (src.as_uri(),))
        monkeypatch.setitem(data._MD5, f"mnist/{fname}", md5(src))
    return arrays


def test_download(tmp_path, isolated_cache, fake_remote):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "mnist/" in data_available("mnist", empty)
    d = load_dataset("mnist", empty)
    assert d.train_x.shape == (12, 1, 28, 28)
    assert sorted(p.name for p in (isolated_cache / "mnist").iterdir()) == sorted(fake_remote)
    assert data_available("mnist", empty) is None
    with pytest.raises(DataError, match="allow downloading"):
        load_dataset("fashion-mnist", empty, download=False)


def test_download_bad_checksum(tmp_path, isolated_cache, fake_remote, monkeypatch):
    monkeypatch.setitem(data._MD5, f"mnist/{MNIST_TRAIN_IMAGES}", "0" * 32)
    with pytest.raises(DataError, match="expected 0{32}"):
        load_dataset("mnist")
    assert not (isolated_cache / "mnist" / MNIST_TRAIN_IMAGES).exists()
    assert not [p for p in (isolated_cache / "mnist").iterdir() if p.name.endswith(".part")]


def test_download_network_error(tmp_path, isolated_cache, monkeypatch):
    url = (tmp_path / "no-such-file.gz").as_uri()
    monkeypatch.setitem(data._URLS, f"mnist/{MNIST_TRAIN_IMAGES}", (url,))
    with pytest.raises(DataError) as err:
        load_dataset("mnist")
    msg = str(err.value)
    assert url in msg and MNIST_TRAIN_IMAGES in msg and str(isolated_cache / "mnist") in msg
    assert not list((isolated_cache / "mnist").iterdir())
