"""The runner and the CLI end to end, on the PyTorch backend: rows, determinism, divergence, collapse, resume."""

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from bench.cli import main
from bench.results import COLUMNS, ROWS, TIMING_METRICS
from bench.runner import train
from bench.schedules import Schedule
from bench.spec import RunSpec, optimizer_params

pytestmark = pytest.mark.env_torch  # the tox envs that run this file (see tests/conftest.py)


def spec(**kw):
    base = dict(study="t", framework="torch", model="mlp", dataset="digits",
                optimizer=optimizer_params({"name": "sgd", "momentum": 0.9}),
                schedule={"name": "constant"}, lr=0.05, batch_size=32, epochs=3, seed=0, device="cpu")
    return RunSpec(**{**base, **kw})


def frame(outcome):
    return pd.DataFrame(outcome.rows, columns=COLUMNS)


def test_run_rows_are_complete_and_deterministic():
    s = spec(schedule={"name": "step", "step_size": 1, "gamma": 0.5}, log_every=10)
    a, b = train(s), train(s)
    assert a.manifest["status"] == "done", a.manifest["error"]
    df = frame(a)
    epoch_rows = df[df["step"] == ""]
    metrics = set(epoch_rows["metric"])
    assert {"loss", "accuracy", "lr", "epoch_seconds", "eval_seconds", "classes_predicted",
            "weight_norm/fc1", "weight_norm/fc3"} <= metrics
    lr = epoch_rows[epoch_rows["metric"] == "lr"]["value"].tolist()
    assert lr == pytest.approx([Schedule("step", 0.05, {"step_size": 1, "gamma": 0.5}).lr(e) for e in range(3)])
    steps = df[df["step"] != ""]["step"].tolist()
    assert steps == list(range(10, 3 * 45 + 1, 10))  # 1437 examples / 32 = 45 steps per epoch
    same = lambda o: frame(o).query("metric not in @TIMING_METRICS")["value"].tolist()  # noqa: E731
    assert same(a) == same(b)
    assert same(a) != same(train(spec(seed=1, schedule=s.schedule, log_every=10)))
    val_acc = epoch_rows[(epoch_rows["split"] == "val") & (epoch_rows["metric"] == "accuracy")]["value"]
    assert val_acc.iloc[-1] > 0.5


def test_a_warmup_in_front_of_an_epoch_schedule_logs_the_lr_of_its_steps():
    """The runner's step rows carry the lr each logged step applied: the epoch schedule times the warm-up's factor;
    the epoch rows the lr of each epoch's first step."""
    schedule = {"name": "step", "step_size": 1, "gamma": 0.5, "warmup_steps": 60, "warmup_start_factor": 0.1}
    out = train(spec(schedule=schedule, log_every=5))
    assert out.manifest["status"] == "done", out.manifest["error"]
    df = frame(out)
    reference = Schedule("step", 0.05, {k: v for k, v in schedule.items() if k != "name"})
    step_lr = df[(df["step"] != "") & (df["metric"] == "lr")]
    assert step_lr["step"].tolist() == list(range(5, 3 * 45 + 1, 5))
    expected = [reference.lr_at(step - 1, 45) for step in step_lr["step"]]  # row step k: optimizer step k - 1
    assert step_lr["value"].tolist() == pytest.approx(expected, rel=1e-12)
    assert expected[0] < expected[8] and expected[11] < expected[8]  # up through epoch 0, epoch 1 at half
    epoch_lr = df[(df["step"] == "") & (df["metric"] == "lr")]["value"].tolist()
    assert epoch_lr == pytest.approx([reference.lr_at(45 * e, 45) for e in range(3)], rel=1e-12)


def test_divergence_stops_the_run_and_keeps_rows():
    out = train(spec(lr=1e30, epochs=5))
    assert out.manifest["status"] == "diverged"
    assert out.manifest["epochs_done"] < 5
    df = frame(out)
    assert not np.isfinite(df[(df["metric"] == "loss") & (df["split"] == "train")]["value"].iloc[-1])


def test_one_class_for_three_epochs_is_collapsed():
    out = train(spec(lr=1.0, epochs=6, optimizer=optimizer_params({"name": "adam"})))
    df = frame(out)
    classes = df[df["metric"] == "classes_predicted"]["value"].tolist()
    assert classes[-3:] == [1, 1, 1], classes
    assert out.manifest["status"] == "collapsed"
    acc = df[(df["split"] == "val") & (df["metric"] == "accuracy")]["value"].iloc[-1]
    assert acc < 0.2


STUDY = """name = "resume"
dataset = "digits"
model = "mlp"
epochs = 3
batch_size = 16
lr = 0.05
log_every = 25
[grid]
lr = [0.2, 0.1, 0.05, 0.02]
"""


def sweep(study, out, *options, **kw):
    return subprocess.Popen([sys.executable, "-m", "bench.cli", "run", str(study), "--out", str(out), "--frameworks", "torch",
                             "--no-plot", *options],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, **kw)


def wait_until(condition, seconds, every=0.05):
    deadline = time.time() + seconds
    while not condition() and time.time() < deadline:
        time.sleep(every)


def deterministic(path):
    df = pd.read_csv(path)
    df = df[~df["metric"].isin(TIMING_METRICS)]
    return df.sort_values(["run_id", "epoch", "step", "split", "metric"]).reset_index(drop=True)


def finished_runs(folder):
    return len(list(folder.glob("runs/*.json")))


def writing(folder):
    """A temp file exists: the driver is writing a run's files or rebuilding results.csv."""
    return any(folder.glob(".*.tmp")) or any(folder.glob("runs/.*.tmp"))


def test_killed_at_several_points_then_resumed_gives_the_rows_of_one_clean_sweep(tmp_path):
    """SIGKILL (driver and run process) while starting, while writing, mid-run; then resume to the end."""
    study = tmp_path / "resume.toml"
    study.write_text(STUDY.replace("epochs = 3", "epochs = 8"))  # runs long enough to be killed in one
    folder = tmp_path / "killed" / "resume"

    def mid_run():  # a run has just finished and the next one is training (a worker starts it at once)
        done = finished_runs(folder)
        wait_until(lambda: finished_runs(folder) > done, 120)
        time.sleep(0.2)

    kill_points = {
        "while starting": lambda: time.sleep(1.0),
        "while writing": lambda: wait_until(lambda: writing(folder), 120, every=0.0002),
        "mid-run": mid_run,
    }
    for point, wait_for in kill_points.items():
        killed = sweep(study, tmp_path / "killed")
        wait_for()
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait()
        assert finished_runs(folder) < 4, f"killed {point} too late: the sweep had finished"
        if (folder / ROWS).exists():  # whatever a kill leaves is whole: no half row, no duplicate
            assert not pd.read_csv(folder / ROWS).duplicated().any()

    finished = finished_runs(folder)
    assert finished >= 1
    resumed = sweep(study, tmp_path / "killed")
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert f"{4 - finished} of 4 runs to do" in err
    assert not writing(folder)

    clean = sweep(study, tmp_path / "clean")
    _, err = clean.communicate(timeout=300)
    assert clean.returncode == 0, err

    a = deterministic(folder / ROWS)
    b = deterministic(tmp_path / "clean" / "resume" / ROWS)
    assert not a.duplicated().any()
    pd.testing.assert_frame_equal(a, b)


def test_warm_start_continues_the_network_and_resumes_a_missing_stage():
    """One network at each lr of the chain in turn; a stage asked for alone is trained from the start of its chain."""
    from bench.runner import train_group

    chain = (0.1, 0.01, 0.001)
    stages = [spec(lr=lr, protocol="warm_start", chain=chain, epochs=2) for lr in chain]
    outcomes = train_group(stages, threads=1)
    assert [o.manifest["status"] for o in outcomes] == ["done"] * 3, [o.manifest["error"] for o in outcomes]
    fresh = frame(train(spec(lr=0.1, epochs=2), threads=1))
    first = frame(outcomes[0])
    deterministic = lambda df: df.query("metric not in @TIMING_METRICS")["value"].tolist()  # noqa: E731
    assert deterministic(first) == deterministic(fresh)  # stage 0 is the fresh run at the first lr
    second = frame(outcomes[1])
    val_acc = lambda df: df[(df["split"] == "val") & (df["metric"] == "accuracy")]["value"].tolist()  # noqa: E731
    fresh_second = frame(train(spec(lr=0.01, epochs=2), threads=1))
    assert val_acc(second)[0] > val_acc(fresh_second)[0] + 0.2  # it started from a trained network
    lrs = second[second["metric"] == "lr"]["value"].tolist()
    assert lrs == [0.01, 0.01]  # a new optimizer at the stage's lr
    [alone] = train_group([stages[2]], threads=1)  # resume: only the last stage is missing
    assert deterministic(frame(alone)) == deterministic(frame(outcomes[2]))
    assert alone.manifest["protocol"] == "warm_start" and alone.manifest["run_id"] == stages[2].run_id


def test_a_stopped_warm_start_chain_goes_on_from_its_last_finished_stage(tmp_path):
    """Each stage is kept as it finishes, with the network it left; killed mid-chain and run again, the chain
    goes on from that network (no finished stage trains again) and ends with the rows of an unbroken chain."""
    study = tmp_path / "resume.toml"
    study.write_text(STUDY.replace("epochs = 3", "epochs = 6") + '[[configs]]\nprotocol = "warm_start"\n')
    folder = tmp_path / "killed" / "resume"
    killed = sweep(study, tmp_path / "killed")
    wait_until(lambda: finished_runs(folder) >= 2, 120)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    done = finished_runs(folder)
    assert 2 <= done < 4, f"killed after {done} of the chain's 4 stages"
    assert len(list(folder.glob("runs/*.weights.npz"))) == 1  # the latest stage's network; the one before is let go
    manifests = {p.name: p.read_text() for p in folder.glob("runs/*.json")}

    resumed = sweep(study, tmp_path / "killed")
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert f"{4 - done} of 4 runs to do" in err
    trained = {float(lr) for lr in re.findall(r" lr=([0-9.e-]+) seed=0 warm_start: done", err)}
    assert trained == set([0.2, 0.1, 0.05, 0.02][done:]), err  # the stages left, each once
    assert all((folder / "runs" / name).read_text() == text for name, text in manifests.items())
    assert not list(folder.glob("runs/*.weights.npz"))  # the chain is whole: no network is kept

    clean = sweep(study, tmp_path / "clean")
    _, err = clean.communicate(timeout=300)
    assert clean.returncode == 0, err
    pd.testing.assert_frame_equal(deterministic(folder / ROWS),
                                  deterministic(tmp_path / "clean" / "resume" / ROWS))


@pytest.mark.skipif("__import__('torch').cuda.is_available()", reason="checks the message given when there is no GPU")
def test_device_cuda_without_a_gpu(tmp_path, capsys):
    assert main(["run", "digits", "--quick", "--frameworks", "torch", "--device", "cuda", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--device cuda but torch sees no CUDA GPU" in err[0]
    assert not list(tmp_path.glob("*/runs/*.json"))


def test_second_writer_refuses_while_the_first_runs(tmp_path):
    study = tmp_path / "resume.toml"
    study.write_text(STUDY)
    first = sweep(study, tmp_path / "out")
    runs = tmp_path / "out" / "resume" / "runs"
    wait_until(runs.exists, 60)
    second = sweep(study, tmp_path / "out")
    _, err = second.communicate(timeout=120)
    assert second.returncode == 2
    assert "another bench process is writing" in err and err.strip().count("\n") == 0
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert len(list(runs.glob("*.json"))) == 4
