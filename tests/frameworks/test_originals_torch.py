"""The bundled studies end to end on the PyTorch backend: each original as written (shortened where its data is
written here in the exact format), `bench all` and `bench perf`."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from bench.cli import main
from bench.results import COLUMNS, LOCK, ROWS, with_run_columns
from bench.spec import load_study
from tests.conftest import write_cifar

from .test_torch import frame

pytestmark = pytest.mark.env_torch  # the tox envs that run this file (see tests/conftest.py)


def test_lr_sweep_quick_on_real_mnist(tmp_path, real_data_dir, capsys):
    code = main(["run", "lr-sweep", "--quick", "--frameworks", "torch", "--out", str(tmp_path),
                 "--data-dir", str(real_data_dir)])
    assert code == 0
    folder = tmp_path / "lr-sweep-quick"
    df = pd.read_csv(folder / ROWS)
    assert list(df.columns) == COLUMNS
    df = with_run_columns(df, pd.read_csv(folder / "manifest.csv"))
    final = df[(df["metric"] == "accuracy") & (df["split"] == "val") & (df["epoch"] == 3)]
    fresh = final[final["protocol"] == "fresh"].set_index("lr")["value"]
    warm = final[final["protocol"] == "warm_start"].set_index("lr")["value"]
    assert fresh[0.01] > fresh[0.0001] + 0.3, fresh
    # warm start: lr 0.0001 continues the network lr 0.1, 0.01 and 0.001 trained
    assert warm[0.0001] > fresh[0.0001] + 0.3, (fresh, warm)
    assert (folder / "figures" / "lr-sweep_curves_torch.png").stat().st_size > 10_000


def test_signs_runs_as_written_and_flags_the_collapse(tmp_path, signs_test_file, signs_checksum):
    """train_signs.h5 is not at hand: build one in the exact format from the test images (the real ones when present),
    and run the study as written but for its length (40 of its 1500 epochs, 3 seeds), every claim judged."""
    import h5py

    (tmp_path / "data" / "signs").mkdir(parents=True)
    test = signs_test_file
    with h5py.File(test) as f, h5py.File(tmp_path / "data" / "signs" / "train_signs.h5", "w") as g:
        g["train_set_x"] = np.tile(f["test_set_x"][:], (9, 1, 1, 1))
        g["train_set_y"] = np.tile(f["test_set_y"][:], 9)
        g["list_classes"] = f["list_classes"][:]
    (tmp_path / "data" / "signs" / "test_signs.h5").write_bytes(test.read_bytes())
    assert main(["run", "signs", "--epochs", "40", "--seeds", "3", "--frameworks", "torch", "--out", str(tmp_path / "out"),
                 "--data-dir", str(tmp_path / "data"), "--jobs", "2"]) == 0
    manifest = pd.read_csv(tmp_path / "out" / "signs-40-epochs" / "manifest.csv")
    assert set(manifest["init"]) == {"glorot"}  # the original's Xavier weights and zero biases
    status = manifest.set_index(["lr", "seed"])["status"]
    assert status[1.0, 0] == "collapsed" and status[0.0001, 0] == "done"
    df = pd.read_csv(tmp_path / "out" / "signs-40-epochs" / ROWS)
    final = df[(df["metric"] == "accuracy") & (df["split"] == "val") & (df["epoch"] == 40) & (df["seed"] == 0)]
    final = final.set_index("lr")["value"]
    assert final[1.0] == pytest.approx(1 / 6) and final[0.0001] > 0.5
    last = df[(df["epoch"] == 40) & (df["seed"] == 0) & df["step"].isna()].pivot_table(
        index="lr", columns=["split", "metric"], values="value")
    # the original's cost: 1080 examples at 32 are 34 batches, their costs summed over int(1080 / 32) = 33
    assert last[("train", "cost")][1.0] == pytest.approx(last[("train", "loss")][1.0] * 34 / 33, rel=1e-12)
    # what the original prints at lr 0.01, collapsed: ln 6 x 34 / 33 and Adam's jitter about the uniform output
    # (at lr 1 that jitter is larger: 1.9)
    assert status[0.01, 0] == "collapsed" and last[("train", "cost")][0.01] == pytest.approx(1.847423, abs=0.002)
    # its "Train Accuracy": the whole training set after the epoch, in eval mode. Here the training set is the test
    # set nine times over, so it scores exactly as the validation set does
    assert last[("train", "eval_accuracy")][1.0] == pytest.approx(1 / 6)
    pd.testing.assert_series_equal(last[("train", "eval_accuracy")], last[("val", "accuracy")], check_names=False)
    pd.testing.assert_series_equal(last[("train", "eval_loss")], last[("val", "loss")], check_names=False, rtol=1e-6)

    report = main(["report", str(tmp_path / "out")])
    assert report == 0
    text = (tmp_path / "out" / "report.md").read_text()
    claims = text.split("### Claims", 1)[1]
    header = next(line for line in claims.splitlines() if line.startswith("| claim |")).split("|")
    collapse = [line for line in claims.splitlines() if line.startswith("| Adam at lr 1 collapses")]
    assert len(collapse) == 3  # one row per seed
    assert [line.split("|")[header.index(" seed ")].strip() for line in collapse] == ["0", "1", "2"]
    cost = [line for line in claims.splitlines()
            if line.startswith("| collapsed at lr 0.01, the cost is the original's 1.8474")]
    assert len(cost) == 3 and all("| held" in line for line in cost), cost
    originals = text.split("### What the originals concluded, tested here", 1)[1].split("\n### ", 1)[0]
    said = originals.split("**signs**:\n\n", 1)[1].split("\n\n", 1)[0].splitlines()  # each original claim, judged
    seed = [c["text"] for c in load_study("signs").claims if c["source"] == "seed"]
    assert [line.split(": **")[0] for line in said[:-1]] == [f"- {text}" for text in seed]
    assert "**held in all 3 seeds**" in said[0] and "lr 0.001 collapses" in said[2] and "in torch** (3 seeds)" in said[2]
    assert said[-1].startswith("- the original's printed numbers within the study file's tolerance: **")


def test_step_decay_runs_as_written_with_the_same_lr_held_constant_beside_it(tmp_path, monkeypatch):
    """CIFAR-10 is not at hand: batches in the exact format, 500 training and 100 test images. The study runs as written
    (10 epochs, batch 4), its constant-lr config beside StepLR, and the report judges the original's claims on them."""
    from bench import data

    write_cifar(tmp_path / "data" / "cifar-10", {**{f"data_batch_{i}": 100 for i in range(1, 6)}, "test_batch": 100},
                learnable=True)
    for name in data._CIFAR_BATCHES:  # not the published files: lrbench is told their md5 (checksums stay checked)
        rel = f"cifar-10/cifar-10-batches-py/{name}"
        monkeypatch.setitem(data._MD5, rel, data._md5_file(tmp_path / "data" / rel))
    out = tmp_path / "out"
    assert main(["run", "step-decay", "--frameworks", "torch", "--out", str(out), "--data-dir", str(tmp_path / "data")]) == 0
    manifest = pd.read_csv(out / "step-decay" / "manifest.csv")
    assert sorted(manifest["schedule"]) == ["constant", "step(step_size=5)"] and set(manifest["status"]) == {"done"}
    df = pd.read_csv(out / "step-decay" / ROWS)
    lr = df[(df["metric"] == "lr") & df["step"].isna()].pivot_table(index="epoch", columns="schedule", values="value")
    assert lr["constant"].eq(0.001).all() and lr.iloc[:, 1].round(12).tolist() == [0.001] * 5 + [0.0001] * 5
    assert main(["report", str(out)]) == 0
    text = (out / "report.md").read_text()
    originals = text.split("**step-decay**:\n\n", 1)[1].split("\n\n", 1)[0]
    seed = [c["text"] for c in load_study("step-decay").claims if c["source"] == "seed"]
    assert len(seed) == 3 and all(f"- {claim}: **" in originals for claim in seed), originals
    assert "- step decay helps convergence" in originals and "in torch** (1 seed" in originals


def test_step_decay_logs_the_originals_running_loss_on_a_cifar_file(tmp_path):
    """The study's own logging, on CIFAR-10 batches in the exact format: at batch 2000 of each epoch, the mean of the
    2000 step losses before it; the 100 batches left at an epoch's end are not carried into the next (reset per epoch)."""
    from bench.runner import train_group

    write_cifar(tmp_path / "cifar-10", {"data_batch_1": 8400, "test_batch": 100})
    study = load_study("step-decay").runs(["torch"])[0]
    assert (study.log_every, study.log_at) == (2000, "running")
    s = dataclasses.replace(study, epochs=2, train_size=8400, val_size=100, device="cpu")  # 2100 batches of 4 an epoch
    running, every = (frame(train_group([x], tmp_path, threads=1, verify=False)[0])  # the files are not the published ones
                      for x in (s, dataclasses.replace(s, log_every=1, log_at="step")))
    logged = running[running["metric"] == "running_loss"]
    assert logged["step"].tolist() == [2000, 4100] and logged["epoch"].tolist() == [1, 2]
    steps = every[(every["metric"] == "loss") & (every["step"] != "")].sort_values("step", key=lambda c: c.astype(int))
    losses = steps["value"].to_numpy(float)
    assert len(losses) == 4200
    np.testing.assert_allclose(logged["value"], [losses[:2000].mean(), losses[2100:4100].mean()], rtol=1e-12)


def test_perf_times_the_runner_against_hand_written_loops(tmp_path, real_data_dir, capsys):
    assert main(["perf", "--frameworks", "torch", "--epochs", "1", "--rounds", "2", "--train-size", "6000",
                 "--out", str(tmp_path), "--data-dir", str(real_data_dir)]) == 0
    df = pd.read_csv(tmp_path / "perf" / "perf-cpu.csv").set_index("way")
    assert list(df.index) == ["runner", "hand", "hand-contiguous", "dataloader"]
    assert (df["rounds"] == 2).all() and (df["epochs_timed"] == 2).all()  # one timed epoch a round
    assert (df["median_epoch_seconds"] > 0).all() and set(df["device"]) == {"cpu"}
    assert df.loc["runner", "runner_over_hand"] == pytest.approx(
        df.loc["runner", "median_epoch_seconds"] / df.loc["hand", "median_epoch_seconds"], abs=1e-3)
    assert "runner_over_hand" in capsys.readouterr().out


def test_bench_all_lists_the_studies_it_skipped_in_the_report(tmp_path, monkeypatch, capsys):
    """SIGNS has no download address: `bench all` skips it, runs the rest, and the report names it with its fix."""
    import bench.cli

    monkeypatch.setattr(bench.cli, "study_names", lambda: ["digits", "signs"])
    (tmp_path / "data").mkdir()
    out = tmp_path / "out"
    assert main(["all", "--quick", "--epochs", "1", "--frameworks", "torch", "--out", str(out),
                 "--data-dir", str(tmp_path / "data")]) == 0
    skipped = pd.read_csv(out / "skipped.csv")
    assert list(skipped["study"]) == ["signs"] and "train_signs.h5" in skipped["reason"][0]
    report = (out / "report.md").read_text()
    section = report.split("### Studies not run here")[1].split("\n## ")[0]
    assert "- signs: " in section and str(tmp_path / "data" / "signs") in section
    # a later run with the data in place writes the file again: no stale name
    monkeypatch.setattr(bench.cli, "study_names", lambda: ["digits"])
    assert main(["all", "--quick", "--epochs", "1", "--frameworks", "torch", "--out", str(out),
                 "--data-dir", str(tmp_path / "data")]) == 0
    assert pd.read_csv(out / "skipped.csv").empty and str(tmp_path / "data" / "signs") not in (out / "report.md").read_text()
    assert not list(out.rglob(LOCK))  # no lock outlives the command
