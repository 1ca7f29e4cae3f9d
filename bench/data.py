"""Datasets as identical numpy arrays for every backend, from verified original files.

All frameworks must see byte-identical inputs, so loading lives here rather than in each
framework's own dataset helpers. Files are looked up in the data dir (argument or
``BENCH_DATA_DIR``), then in the user cache, and only then downloaded into the cache.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import struct
import sys
import tarfile
import tempfile
import urllib.request
import zlib
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path

import numpy as np

from bench.errors import DataError

DATASETS = ("mnist", "fashion-mnist", "cifar-10", "signs", "digits")

_IDX_NAMES = {
    "train_x": "train-images-idx3-ubyte.gz",
    "train_y": "train-labels-idx1-ubyte.gz",
    "val_x": "t10k-images-idx3-ubyte.gz",
    "val_y": "t10k-labels-idx1-ubyte.gz",
}
_CIFAR_DIR = "cifar-10/cifar-10-batches-py"
_CIFAR_TAR = "cifar-10/cifar-10-python.tar.gz"
_CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
_CIFAR_BATCHES = _CIFAR_TRAIN + ("test_batch",)
_SIGNS_TRAIN = "signs/train_signs.h5"
_SIGNS_TEST = "signs/test_signs.h5"
_SIGNS_TRAIN_N = 1080

# Published checksums, keyed by path relative to a data dir.
_MD5 = {
    "mnist/train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "mnist/train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "mnist/t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "mnist/t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    "fashion-mnist/train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "fashion-mnist/train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "fashion-mnist/t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "fashion-mnist/t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    _CIFAR_TAR: "c58f30108f718f92721af3b95e74349a",
    f"{_CIFAR_DIR}/data_batch_1": "c99cafc152244af753f735de768cd75f",
    f"{_CIFAR_DIR}/data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    f"{_CIFAR_DIR}/data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    f"{_CIFAR_DIR}/data_batch_4": "634d18415352ddfa80567beed471001a",
    f"{_CIFAR_DIR}/data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    f"{_CIFAR_DIR}/test_batch": "40351d587109b95175f43aff81a1287e",
    _SIGNS_TEST: "2338a58ca0b878df76f995d418d03a9e",
}

# Canonical addresses, first tried first. SIGNS has none.
_URLS = {
    **{
        f"mnist/{f}": (
            f"https://ossci-datasets.s3.amazonaws.com/mnist/{f}",
            f"http://yann.lecun.com/exdb/mnist/{f}",
        )
        for f in _IDX_NAMES.values()
    },
    **{
        f"fashion-mnist/{f}": (f"http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/{f}",)
        for f in _IDX_NAMES.values()
    },
    _CIFAR_TAR: ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
}

_TIMEOUT_S = 15


class DownloadFailed(DataError):
    """Every address of a file failed; the caller names it with the dataset's other missing files."""
_md5_cache: dict[tuple[str, int, int], str] = {}


@dataclass(frozen=True, eq=False)  # eq=False: comparing/hashing arrays field-wise is meaningless
class Dataset:
    """One dataset split into train/val, ready for any framework."""

    name: str
    train_x: np.ndarray  # float32, NCHW, normalised
    train_y: np.ndarray  # int64
    val_x: np.ndarray
    val_y: np.ndarray
    classes: int

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one example."""
        c, h, w = self.train_x.shape[1:]
        return int(c), int(h), int(w)


# --------------------------------------------------------------------------- locations


def cache_dir() -> Path:
    """The per-user download cache (XDG convention)."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "lrbench"


def _roots(data_dir: str | os.PathLike | None) -> list[Path]:
    """Folders searched in order: explicit data dir (or BENCH_DATA_DIR), then the cache."""
    given = data_dir if data_dir is not None else (os.environ.get("BENCH_DATA_DIR") or None)
    roots = []
    if given is not None:
        root = Path(given).expanduser()
        if not root.is_dir():
            raise DataError(
                f"data directory {root} does not exist: create it or fix --data-dir / BENCH_DATA_DIR"
            )
        roots.append(root)
    cache = cache_dir()
    if cache not in roots:
        roots.append(cache)
    return roots


def _find(rel: str, roots: list[Path]) -> Path | None:
    for root in roots:
        if (root / rel).is_file():
            return root / rel
    return None


def _folders(rel: str, roots: list[Path]) -> str:
    return " or ".join(f"{(r / rel).parent}/" for r in roots)


def _missing(rels: list[str], roots: list[Path], download: bool, failure: str = "") -> str:
    """One line naming every missing file of a dataset, the folders they go in, and where they come from."""
    names = ", ".join(Path(rel).name for rel in rels)
    msg = (f"{Path(rels[0]).parent} is missing {len(rels)} file{'s' if len(rels) > 1 else ''} ({names}): "
           f"put {'them' if len(rels) > 1 else 'it'} in {_folders(rels[0], roots)}")
    urls = [_URLS[rel][0] for rel in rels if rel in _URLS]
    if not urls:
        return msg + f" ({'they have' if len(rels) > 1 else 'it has'} no download address)"
    if failure:
        return msg + f" (downloading failed: {failure})"
    if not download:
        return msg + f", or allow downloading {'them' if len(rels) > 1 else 'it'} from {urls[0].rsplit('/', 1)[0]}/"
    return msg


def _gather(rels: list[str], roots: list[Path], download: bool) -> dict[str, Path]:
    """Every file of a dataset, found or downloaded into the cache. What is still missing is named all at once;
    after a failed download the rest is not tried (the network is likely down)."""
    found = {rel: _find(rel, roots) for rel in rels}
    failure = ""
    for rel in [r for r, path in found.items() if path is None]:
        if download and rel in _URLS and not failure:
            try:
                found[rel] = _download(rel, roots)
            except DownloadFailed as e:
                failure = str(e)
    missing = [rel for rel, path in found.items() if path is None]
    if missing:
        raise DataError(_missing(missing, roots, download, failure))
    return found


# --------------------------------------------------------------------------- checksums


def _md5_file(path: Path) -> str:
    """MD5 of a file, remembered per (path, mtime, size) so repeated loads hash once."""
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    if key not in _md5_cache:
        h = hashlib.md5(usedforsecurity=False)
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        _md5_cache[key] = h.hexdigest()
    return _md5_cache[key]


def _check_md5(path: Path, rel: str, verify: bool) -> None:
    """Refuse a file that differs from the published original."""
    want = _MD5.get(rel)
    if not verify or want is None:
        return
    got = _md5_file(path)
    if got != want:
        urls = _URLS.get(rel)
        fix = (
            f"delete it and run again to download it, or replace it with the original from {urls[0]}"
            if urls
            else "replace it with the original file"
        )
        raise DataError(f"{path} is corrupt or truncated (md5 {got}, expected {want}): {fix}")


def _download(rel: str, roots: list[Path]) -> Path:
    """Download ``rel`` into the cache: temp file, md5 check, atomic rename."""
    from tqdm import tqdm

    dest = cache_dir() / rel
    urls = _URLS[rel]
    want = _MD5.get(rel)
    failures = []
    for url in urls:
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        except OSError as e:
            raise DataError(f"cannot write to cache folder {dest.parent} ({e}): fix its permissions or set XDG_CACHE_HOME") from e
        try:
            h = hashlib.md5(usedforsecurity=False)
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=_TIMEOUT_S) as resp:
                total = int(resp.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                          desc=rel, file=sys.stderr, leave=False) as bar:
                    while chunk := resp.read(1 << 16):
                        out.write(chunk)
                        h.update(chunk)
                        bar.update(len(chunk))
            got = h.hexdigest()
            if want is not None and got != want:
                failures.append(f"{url} gave md5 {got}, expected {want}")
                continue
            os.replace(tmp, dest)
            st = dest.stat()
            _md5_cache[(str(dest.resolve()), st.st_mtime_ns, st.st_size)] = got
            return dest
        except (OSError, HTTPException, ValueError) as e:
            failures.append(f"{url}: {e}".replace("\n", " "))
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    raise DownloadFailed(f"{rel}: {'; '.join(failures)}")


# --------------------------------------------------------------------------- file formats

_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_idx(path: Path) -> np.ndarray:
    """Parse a gzip'd IDX file, trusting nothing but its header."""
    try:
        raw = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path} is not a valid gzip file ({e}): delete it and run again, or replace it") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()}): replace it with the original")
    ndim, off = raw[3], 4 + 4 * raw[3]
    if len(raw) < off:
        raise DataError(f"{path} is truncated inside its IDX header: replace it with the original")
    dims = struct.unpack(f">{ndim}I", raw[4:off])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    count = int(np.prod(dims, dtype=np.int64))
    if len(raw) - off != count * dtype.itemsize:
        raise DataError(
            f"{path} holds {len(raw) - off} data bytes but its IDX header {dims} says "
            f"{count * dtype.itemsize}: the file is truncated or corrupt, replace it with the original"
        )
    return np.frombuffer(raw, dtype=dtype, count=count, offset=off).reshape(dims)


def _idx_files(name: str) -> list[str]:
    return [f"{name}/{f}" for f in _IDX_NAMES.values()]


def _load_idx_pair(name: str, split: str, files: dict[str, Path], verify, side: int = 28):
    paths = {}
    for part in ("x", "y"):
        rel = f"{name}/{_IDX_NAMES[f'{split}_{part}']}"
        paths[part] = files[rel]
        _check_md5(paths[part], rel, verify)
    x, y = _read_idx(paths["x"]), _read_idx(paths["y"])
    if x.ndim != 3 or x.shape[1:] != (side, side) or x.dtype != np.uint8:
        raise DataError(f"{paths['x']} holds {x.dtype} {x.shape}, expected uint8 (N, {side}, {side}) images")
    if y.ndim != 1 or len(y) != len(x):
        raise DataError(f"{paths['y']} holds labels {y.shape} for {len(x)} images in {paths['x']}: replace both")
    _check_labels(y, 10, paths["y"])
    return x[:, None], y


def _check_labels(y: np.ndarray, classes: int, where) -> None:
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{where} has {y.dtype} labels where integer class indices 0..{classes - 1} belong: "
                        f"replace it with the original")
    if y.size and (y.min() < 0 or y.max() >= classes):
        raise DataError(f"{where} has labels outside 0..{classes - 1}: replace it with the original")


def _unpickle_batch(fileobj, where: str) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 batch (a trusted, md5-checked pickle) as (N,3,32,32) uint8 and labels."""
    try:
        d = pickle.load(fileobj, encoding="bytes")
        data, labels = d[b"data"], d[b"labels"]
    except Exception as e:  # any unpickling failure means a bad file
        raise DataError(f"{where} is not a CIFAR-10 batch ({type(e).__name__}: {e}): replace it with the original") from e
    data = np.asarray(data)
    labels = np.asarray(labels)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or labels.shape != (len(data),):
        raise DataError(f"{where} holds data {data.dtype} {data.shape} and {labels.shape} labels, "
                        "expected uint8 (N, 3072) and N labels: replace it with the original")
    _check_labels(labels, 10, where)
    return data.reshape(-1, 3, 32, 32), labels  # rows are R, G, B planes: already CHW


def _cifar_source(roots: list[Path]) -> tuple[str, Path] | None:
    for root in roots:
        if all((root / _CIFAR_DIR / b).is_file() for b in _CIFAR_BATCHES):
            return "dir", root / _CIFAR_DIR
        if (root / _CIFAR_TAR).is_file():
            return "tar", root / _CIFAR_TAR
    return None


def _cifar_missing(roots: list[Path], download: bool) -> str:
    partial = next((root / _CIFAR_DIR for root in roots if (root / _CIFAR_DIR).is_dir()), None)
    if partial is not None:  # an extracted folder short of batches: name them, as a missing MNIST file is named
        missing = [b for b in _CIFAR_BATCHES if not (partial / b).is_file()]
        msg = (f"CIFAR-10's {partial}/ is missing {len(missing)} file{'s' if len(missing) > 1 else ''} "
               f"({', '.join(missing)}): extract them there from cifar-10-python.tar.gz, or put that archive in "
               f"{_folders(_CIFAR_TAR, roots)}")
    else:
        msg = (f"CIFAR-10 not found: put cifar-10-python.tar.gz in {_folders(_CIFAR_TAR, roots)}, "
               f"or its extracted cifar-10-batches-py/ folder beside it")
    return msg if download else msg + f", or allow downloading it from {_URLS[_CIFAR_TAR][0]}"


def _load_cifar(roots, download, verify):
    src = _cifar_source(roots)
    if src is None:
        if not download:
            raise DataError(_cifar_missing(roots, download))
        try:
            src = "tar", _download(_CIFAR_TAR, roots)
        except DownloadFailed as e:
            raise DataError(_cifar_missing(roots, download) + f" (downloading failed: {e})") from None
    kind, path = src
    batches = {}
    if kind == "dir":
        for b in _CIFAR_BATCHES:
            _check_md5(path / b, f"{_CIFAR_DIR}/{b}", verify)
            with open(path / b, "rb") as f:
                batches[b] = _unpickle_batch(f, str(path / b))
    else:
        _check_md5(path, _CIFAR_TAR, verify)
        try:
            with tarfile.open(path, "r:gz") as tar:
                for b in _CIFAR_BATCHES:
                    member = tar.extractfile(f"cifar-10-batches-py/{b}")
                    if member is None:
                        raise KeyError(b)
                    batches[b] = _unpickle_batch(member, f"{path}:{b}")
        except (tarfile.TarError, OSError, EOFError, zlib.error, KeyError) as e:
            raise DataError(f"{path} is not a complete CIFAR-10 archive ({type(e).__name__}: {e}): "
                            f"delete it and run again, or replace it with the original from {_URLS[_CIFAR_TAR][0]}") from e
    train_x = np.concatenate([batches[b][0] for b in _CIFAR_TRAIN])
    train_y = np.concatenate([batches[b][1] for b in _CIFAR_TRAIN])
    return train_x, train_y, *batches["test_batch"]


def _read_signs(path: Path, prefix: str, expected_n: int | None):
    """One SIGNS h5 file as (N,3,64,64) uint8 and labels, structurally checked."""
    kx, ky = f"{prefix}_set_x", f"{prefix}_set_y"
    try:
        import h5py

        with h5py.File(path, "r") as f:
            missing = [k for k in (kx, ky) if k not in f]
            if missing:
                raise DataError(f"{path} lacks dataset(s) {', '.join(missing)}: replace it with the original SIGNS file")
            groups = [k for k in (kx, ky) if not isinstance(f[k], h5py.Dataset)]
            if groups:
                raise DataError(f"{path} holds {groups[0]} as an HDF5 group, not a dataset of arrays: replace it with "
                                f"the original SIGNS file")
            x, y = f[kx][()], f[ky][()]
    except OSError as e:
        raise DataError(f"{path} is not a readable HDF5 file ({e}): replace it with the original SIGNS file") from e
    if y.size == len(x):
        y = y.reshape(-1)
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (64, 64, 3) or y.shape != (len(x),):
        raise DataError(f"{path} holds {kx} {x.dtype} {x.shape} and {ky} {y.shape}, expected uint8 "
                        "(N, 64, 64, 3) and (N,): replace it with the original SIGNS file")
    if expected_n is not None and len(x) != expected_n:
        raise DataError(f"{path} holds {len(x)} examples, expected {expected_n}: replace it with the original SIGNS file")
    _check_labels(y, 6, path)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)), y


def _load_signs(roots, verify):
    paths = _gather([_SIGNS_TRAIN, _SIGNS_TEST], roots, download=False)
    _check_md5(paths[_SIGNS_TEST], _SIGNS_TEST, verify)
    # train_signs.h5 has no published checksum: with verify, require the exact original size.
    train = _read_signs(paths[_SIGNS_TRAIN], "train", _SIGNS_TRAIN_N if verify else None)
    return *train, *_read_signs(paths[_SIGNS_TEST], "test", None)


def _load_digits():
    """sklearn's 8x8 digits, scaled 3x and padded to 28x28 so MNIST models apply unchanged."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = d.images.repeat(3, axis=1).repeat(3, axis=2)
    x = np.pad(x, ((0, 0), (2, 2), (2, 2)))[:, None]
    y = d.target
    return x[:1437], y[:1437], x[1437:], y[1437:]


# --------------------------------------------------------------------------- public API


def _canonical(name: str) -> str:
    key = str(name).strip().lower().replace("_", "-")
    if key not in DATASETS:
        raise DataError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")
    return key


def _check_normalize(normalize, channels: int) -> tuple[np.ndarray, np.ndarray] | None:
    """None for plain [0,1] scaling, else per-channel (mean, std) shaped for broadcasting."""
    if isinstance(normalize, str) and normalize == "unit":
        return None
    if not isinstance(normalize, dict):
        raise DataError(f"unknown normalize {normalize!r}: use \"unit\" or {{\"mean\": [...], \"std\": [...]}}")
    if set(normalize) != {"mean", "std"}:
        raise DataError(f"normalize dict has keys {sorted(normalize)}, expected exactly \"mean\" and \"std\"")
    out = []
    for key in ("mean", "std"):
        try:
            v = np.asarray(normalize[key], dtype=np.float32).reshape(-1)
        except (TypeError, ValueError) as e:
            raise DataError(f"normalize {key} must be a list of numbers, got {normalize[key]!r}") from e
        if v.size == 1:
            v = np.repeat(v, channels)
        if v.size != channels or not np.all(np.isfinite(v)):
            raise DataError(f"normalize {key} needs {channels} finite value(s) (one per channel), got {normalize[key]!r}")
        out.append(v.reshape(1, channels, 1, 1))
    if np.any(out[1] <= 0):
        raise DataError(f"normalize std must be positive, got {normalize['std']!r}")
    return out[0], out[1]


def _check_size(value, label: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1):
        raise DataError(f"{label} must be a positive integer or None, got {value!r}")


def _subset(x, y, n, label, name):
    if n is None:
        return x, y
    _check_fits(n, label, name, len(x))
    return x[:n], y[:n]


def _check_fits(n: int | None, label: str, name: str, available: int) -> None:
    if n is not None and n > available:
        raise DataError(f"{label}={n} but {name} has only {available} examples in that split: use {label} <= {available}")


_CHANNELS = {"mnist": 1, "fashion-mnist": 1, "cifar-10": 3, "signs": 3, "digits": 1}
SIZES = {"mnist": (60000, 10000), "fashion-mnist": (60000, 10000), "cifar-10": (50000, 10000),
         "signs": (1080, 120), "digits": (1437, 360)}  # (train, val) examples of the canonical files


def check_options(name: str, normalize="unit", train_size: int | None = None, val_size: int | None = None) -> None:
    """A run's data options, checked before any file is read: one DataError line for the first problem."""
    name = _canonical(name)
    _check_normalize(normalize, _CHANNELS[name])
    for label, n, available in (("train_size", train_size, SIZES[name][0]), ("val_size", val_size, SIZES[name][1])):
        _check_size(n, label)
        _check_fits(n, label, name, available)
CLASSES = {"mnist": 10, "fashion-mnist": 10, "cifar-10": 10, "signs": 6, "digits": 10}


def load_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    normalize: str | dict = "unit",
    train_size: int | None = None,
    val_size: int | None = None,
    download: bool = True,
    verify: bool = True,
) -> Dataset:
    """Load a dataset as float32 NCHW arrays; the first N examples when sizes are given."""
    name = _canonical(name)
    stats = _check_normalize(normalize, _CHANNELS[name])
    _check_size(train_size, "train_size")
    _check_size(val_size, "val_size")

    if name == "digits":
        parts, scale = _load_digits(), 16.0
    else:
        roots = _roots(data_dir)
        scale = 255.0
        if name in ("mnist", "fashion-mnist"):
            files = _gather(_idx_files(name), roots, download)
            parts = (*_load_idx_pair(name, "train", files, verify), *_load_idx_pair(name, "val", files, verify))
        elif name == "cifar-10":
            parts = _load_cifar(roots, download, verify)
        else:
            parts = _load_signs(roots, verify)

    train_x, train_y = _subset(parts[0], parts[1], train_size, "train_size", name)
    val_x, val_y = _subset(parts[2], parts[3], val_size, "val_size", name)

    def to_float(x):
        x = x.astype(np.float32)
        x /= np.float32(scale)
        if stats is not None:
            x -= stats[0]
            x /= stats[1]
        return x

    return Dataset(
        name=name,
        train_x=to_float(train_x),
        train_y=np.ascontiguousarray(train_y, dtype=np.int64),
        val_x=to_float(val_x),
        val_y=np.ascontiguousarray(val_y, dtype=np.int64),
        classes=CLASSES[name],
    )


def files_needed(name: str) -> list[str]:
    """The files a dataset is read from, relative to a data folder: what a user puts there by hand."""
    name = _canonical(name)
    if name == "digits":
        return []
    if name == "cifar-10":
        return [_CIFAR_TAR]
    return [_SIGNS_TRAIN, _SIGNS_TEST] if name == "signs" else _idx_files(name)


def check_data_dir(data_dir: str | os.PathLike | None) -> None:
    """One line (DataError) when the folder given (--data-dir, else BENCH_DATA_DIR) is not there."""
    _roots(data_dir)


def data_available(name: str, data_dir: str | os.PathLike | None = None) -> str | None:
    """None if the dataset can be loaded without downloading, else a one-line reason."""
    name = _canonical(name)
    if name == "digits":
        return None
    try:
        roots = _roots(data_dir)
    except DataError as e:
        return str(e)
    if name == "cifar-10":
        return None if _cifar_source(roots) else _cifar_missing(roots, download=False)
    rels = _idx_files(name) if name != "signs" else [_SIGNS_TRAIN, _SIGNS_TEST]
    missing = [rel for rel in rels if _find(rel, roots) is None]
    return _missing(missing, roots, download=False) if missing else None
