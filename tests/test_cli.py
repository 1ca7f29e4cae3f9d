"""Bad input: one line that names the problem and the fix, exit code 2, nothing written. No framework needed."""

import shutil
import subprocess
import sys

import pytest

from backends import FRAMEWORKS, installed
from bench.cli import main

MNIST_MD5 = "f68b3c2dcbeaaa9fbdd348bbdeb94873"


def bench_error(capsys, *argv):
    code = main(list(argv))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1, err
    return err[0]


def test_unknown_study(capsys):
    line = bench_error(capsys, "run", "nope")
    assert "unknown study 'nope'" in line and "lr-sweep" in line


def test_study_with_non_positive_lr(capsys, tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('dataset = "digits"\nmodel = "mlp"\nepochs = 1\nbatch_size = 8\nlr = 0\n')
    line = bench_error(capsys, "run", str(path), "--out", str(tmp_path / "out"))
    assert "lr must be > 0" in line and "bad.toml" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("framework", [f for f in FRAMEWORKS if not installed(f)] or ["nothing-missing"])
def test_framework_not_installed(capsys, tmp_path, framework):
    line = bench_error(capsys, "run", "digits", "--frameworks", framework, "--out", str(tmp_path))
    if framework == "nothing-missing":
        assert "unknown framework 'nothing-missing'" in line
    else:
        assert f"framework {framework!r} is not installed" in line
        assert f'pip install -e ".[{FRAMEWORKS[framework].extra}]"' in line


def test_unknown_framework(capsys, tmp_path):
    line = bench_error(capsys, "run", "digits", "--frameworks", "jax", "--out", str(tmp_path))
    assert "unknown framework 'jax'" in line and "torch" in line


def test_truncated_mnist_names_file_and_checksum(capsys, tmp_path, real_data_dir):
    data = tmp_path / "data"
    shutil.copytree(real_data_dir / "mnist", data / "mnist")
    image = data / "mnist" / "train-images-idx3-ubyte.gz"
    image.write_bytes(image.read_bytes()[:100_000])
    line = bench_error(capsys, "run", "lr-sweep", "--quick", "--data-dir", str(data), "--out", str(tmp_path / "out"))
    assert "train-images-idx3-ubyte.gz" in line and MNIST_MD5 in line
    assert not (tmp_path / "out").exists()


def test_unwritable_out(capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("keep me")
    line = bench_error(capsys, "run", "digits", "--out", str(blocker / "results"))
    assert "cannot write results to" in line and "--out" in line
    assert blocker.read_text() == "keep me"


def test_console_script_exit_code(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bench.cli", "run", "nope"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "unknown study" in proc.stderr


def test_list_shows_studies_and_frameworks(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "lr-sweep" in out and "signs" in out and "paddle" in out


def test_batch_larger_than_the_data(capsys, tmp_path):
    path = tmp_path / "big.toml"
    path.write_text('dataset = "digits"\nmodel = "mlp"\nepochs = 1\nbatch_size = 64\nlr = 0.1\ntrain_size = 32\n')
    line = bench_error(capsys, "run", str(path), "--out", str(tmp_path / "out"))
    assert "batch_size 64 is larger than its 32 training examples" in line


@pytest.mark.parametrize("option,value", [("--seeds", "0"), ("--epochs", "0"), ("--jobs", "0"), ("--threads", "0")])
def test_counts_below_one(capsys, tmp_path, option, value):
    line = bench_error(capsys, "run", "digits", option, value, "--out", str(tmp_path))
    assert f"{option} must be at least 1" in line
