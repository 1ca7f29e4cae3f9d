"""A Ray cluster that loses a node mid-sweep still finishes: Ray's own multi-node cluster (a head and
two worker nodes, on this machine); one worker node is removed while a run trains on it.

The sweep ends with exactly the rows of an undisturbed (local) sweep, the lost run trained again on
the node left, and the manifest names the node each run ran on.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from bench.cli import main
from bench.results import ROWS

from .test_torch import deterministic, wait_until

pytestmark = [pytest.mark.env_torch, pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")]

STUDY = """name = "lost"
dataset = "digits"
model = "mlp"
epochs = 15
batch_size = 16
lr = 0.05
[grid]
lr = [0.2, 0.1, 0.05, 0.02]
"""


@pytest.fixture
def cluster():
    """A head that runs no task (0 CPUs) and two worker nodes of 1 CPU each; the test's driver joins it."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    cluster.connect()
    yield cluster, workers
    ray.shutdown()
    cluster.shutdown()


def raylet_pid(node) -> int:
    from ray._private import ray_constants

    return node.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process.pid


def run_on(node) -> str | None:
    """The run id of the lrbench task training on ``node`` now (its worker is a child of the node's raylet)."""
    listing = subprocess.run(["ps", "-eo", "ppid=,args="], capture_output=True, text=True).stdout
    for line in listing.splitlines():
        ppid, _, args = line.strip().partition(" ")
        if int(ppid) == raylet_pid(node) and args.startswith("ray::lrbench:"):
            return args.split(":")[-1].split()[0]
    return None


def test_a_sweep_that_loses_a_node_finishes_with_the_rows_of_an_undisturbed_one(tmp_path, capsys, cluster):
    head, (doomed, kept) = cluster
    study = tmp_path / "lost.toml"
    study.write_text(STUDY)
    common = ["run", str(study), "--frameworks", "torch", "--threads", "1"]
    lost: list[str] = []

    def remove_when_training():
        wait_until(lambda: run_on(doomed) is not None, 180, every=0.1)
        lost.append(run_on(doomed))
        time.sleep(1.0)  # a second into its training
        head.remove_node(doomed)

    remover = threading.Thread(target=remove_when_training, daemon=True)
    remover.start()
    assert main([*common, "--out", str(tmp_path / "cluster"), "--ray-address", head.address]) == 0
    remover.join()
    err = capsys.readouterr().err
    assert lost and lost[0] and f"{lost[0]} lost its Ray node; sent again" in err, err

    assert main([*common, "--out", str(tmp_path / "local")]) == 0
    local = deterministic(tmp_path / "local" / "lost" / ROWS)
    on_cluster = deterministic(tmp_path / "cluster" / "lost" / ROWS)
    assert local["run_id"].nunique() == 4
    pd.testing.assert_frame_equal(local, on_cluster)

    manifest = pd.read_csv(tmp_path / "cluster" / "lost" / "manifest.csv").set_index("run_id")
    assert set(manifest["status"]) == {"done"}
    names = {node: f"(Ray node {node.node_id[:12]})" for node in (doomed, kept)}
    assert all(any(name in ran_on for name in names.values()) for ran_on in manifest["node"]), manifest["node"]
    assert names[kept] in manifest.loc[lost[0], "node"]  # trained again, to the end, on the node left
