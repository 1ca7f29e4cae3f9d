"""Executors on the PyTorch backend: local processes and Ray give the same rows; a killed run is recorded failed."""

import os
import signal
import subprocess
import threading
import time

import pandas as pd
import pytest

from bench.cli import main
from bench.results import ROWS

from .processes import descendants
from .test_torch import STUDY, deterministic, wait_until

pytestmark = pytest.mark.env_torch  # the tox envs that run this file (see tests/conftest.py)

LONG_STUDY = """name = "victim"
dataset = "digits"
model = "mlp"
epochs = 40
batch_size = 16
lr = 0.05
[grid]
lr = [0.1, 0.05]
"""


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    """A Ray started here, on this machine's two cores, its files inside the test's tmp path."""
    import ray

    ray.init(num_cpus=2, _temp_dir=str(tmp_path_factory.mktemp("ray")), include_dashboard=False)
    yield ray
    ray.shutdown()


def test_ray_gives_the_same_rows_as_local_processes(tmp_path, local_ray):
    study = tmp_path / "resume.toml"
    study.write_text(STUDY)
    common = ["run", str(study), "--frameworks", "torch", "--threads", "1", "--no-plot"]
    assert main([*common, "--out", str(tmp_path / "local"), "--jobs", "2"]) == 0
    assert main([*common, "--out", str(tmp_path / "ray"), "--executor", "ray"]) == 0
    local = deterministic(tmp_path / "local" / "resume" / ROWS)
    on_ray = deterministic(tmp_path / "ray" / "resume" / ROWS)
    assert len(local) > 0 and local["run_id"].nunique() == 4
    pd.testing.assert_frame_equal(local, on_ray)
    manifest = pd.read_csv(tmp_path / "ray" / "resume" / "manifest.csv")
    assert set(manifest["status"]) == {"done"} and set(manifest["threads"]) == {1}


def kill_first(pgrep_args: list[str], after: float) -> threading.Thread:
    """SIGKILL the first process ``pgrep`` finds below this one (another test run's on this machine is not
    ours to kill), ``after`` seconds into its life."""
    def ours() -> list[str]:
        found = subprocess.run(["pgrep", *pgrep_args], capture_output=True, text=True).stdout.split()
        below = descendants(os.getpid())
        return [pid for pid in found if int(pid) in below]

    def hunt():
        pids: list[str] = []
        wait_until(lambda: pids.extend(ours()) or pids, 120)
        time.sleep(after)
        os.kill(int(pids[0]), signal.SIGKILL)

    thread = threading.Thread(target=hunt, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_a_killed_run_is_failed_and_the_sweep_goes_on(tmp_path, capsys, executor, request):
    study = tmp_path / "victim.toml"
    study.write_text(LONG_STUDY)
    if executor == "ray":
        request.getfixturevalue("local_ray")
        run_process, died = ["-f", "ray::lrbench:"], "WorkerCrashedError"  # started by this process's Ray
    else:  # a run process this test's driver spawned
        run_process, died = ["-P", str(os.getpid()), "-f", "multiprocessing-fork"], "exited with code -9"
    hunter = kill_first(run_process, after=1.5)
    code = main(["run", str(study), "--frameworks", "torch", "--out", str(tmp_path), "--executor", executor,
                 "--no-plot"])
    hunter.join()
    out, err = capsys.readouterr()
    assert code == 1
    assert "victim: 1 done, 1 failed" in out
    assert out.strip().splitlines()[-1] == (f"results: {tmp_path / 'victim'}/ (bench plot {tmp_path} draws its figures); "
                                            f"next: bench report {tmp_path} (report.md and report.html)")
    manifest = pd.read_csv(tmp_path / "victim" / "manifest.csv")
    failed = manifest[manifest["status"] == "failed"]
    assert len(failed) == 1 and died in failed["error"].iloc[0]
    assert f"failed: {failed['error'].iloc[0]}" in err
    # the failed run is retried on the next start, the finished one is not
    assert main(["run", str(study), "--frameworks", "torch", "--out", str(tmp_path), "--executor", executor,
                 "--no-plot"]) == 0
    assert "1 of 2 runs to do" in capsys.readouterr().err
