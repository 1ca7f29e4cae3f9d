"""Results folder: atomic files, resume by run_id, no duplicates, one writer at a time."""

import fcntl
import json

import pandas as pd
import pytest

from bench.errors import BenchError
from bench.results import (
    COLUMNS,
    EPOCH_METRICS,
    LOCK,
    ROWS,
    ResultStore,
    _same_file,
    atomic_write,
    check_writable,
    read_text,
)


def fake_run(run_id, status="done", epochs=2):
    rows = [dict(zip(COLUMNS, [run_id, "s", "torch", "2", "cpu", "mlp", "digits", "sgd", "constant", 0.1, 32, 0, "torch",
                               "fresh", e, "", "val", "accuracy", 0.5 + e / 10])) for e in range(1, epochs + 1)]
    return rows, {"run_id": run_id, "status": status, "error": ""}


def test_rebuild_has_every_finished_run_once(tmp_path):
    store = ResultStore(tmp_path, "s")
    with store.lock():
        store.save_run(*fake_run("a"))
        store.save_run(*fake_run("b", "diverged"))
        store.save_run(*fake_run("c", "failed", epochs=0))
        store.save_run(*fake_run("a"))  # a rerun replaces, never duplicates
    df = pd.read_csv(store.dir / ROWS)
    assert list(df.columns) == COLUMNS
    assert sorted(df["run_id"]) == ["a", "a", "b", "b"]
    assert store.finished() == {"a", "b"}  # failed runs are retried on resume
    assert set(pd.read_csv(store.dir / "manifest.csv")["status"]) == {"done", "diverged", "failed"}


def test_the_combined_rows_are_compressed_and_replace_a_plain_copy_from_before(tmp_path):
    """results.csv.gz holds the rows as results.csv did (pandas reads either); the same rows give the same bytes,
    so a resumed sweep rewrites nothing; an uncompressed copy from before goes at the next rebuild."""
    store = ResultStore(tmp_path, "s")
    with store.lock():
        store.save_run(*fake_run("a"))
        plain = store.dir / "results.csv"
        plain.write_text(read_text(store.dir / ROWS))  # what a folder held before
        before = (store.dir / ROWS).read_bytes()
        store.rebuild()
    assert not plain.exists() and (store.dir / ROWS).read_bytes() == before
    assert len(before) < len(read_text(store.dir / ROWS)) and pd.read_csv(store.dir / ROWS)["run_id"].tolist() == ["a"] * 2


def test_run_files_from_before_init_and_protocol_are_trusted_and_gain_both_columns(tmp_path):
    """A run written before the rows carried init and protocol: resume keeps it, results.csv gets them from its
    manifest (a warm-start run stays one), and nothing is run again."""
    from bench.results import LEGACY_COLUMNS, to_csv

    store = ResultStore(tmp_path, "s")
    rows, manifest = fake_run("old")
    legacy = [{c: r[c] for c in LEGACY_COLUMNS} for r in rows]
    store.runs_dir.mkdir(parents=True)
    (store.runs_dir / "old.csv").write_text(to_csv(legacy, LEGACY_COLUMNS))
    (store.runs_dir / "old.json").write_text(json.dumps({**manifest, "rows": 2, "protocol": "warm_start"}))
    with store.lock():
        assert store.repair() == {"old"}
    df = pd.read_csv(store.dir / ROWS)
    assert list(df.columns) == COLUMNS and set(df["protocol"]) == {"warm_start"} and set(df["init"]) == {"torch"}


def test_a_chain_goes_on_from_its_latest_stage_whose_network_is_whole(tmp_path):
    """Each saved stage keeps its network until the next one is saved; a resumed chain starts from the latest
    whole one, with the batch orders its stages drew, and from the chain's start when that network is damaged."""
    import numpy as np

    from bench.spec import RunSpec

    stages = [RunSpec(study="s", framework="torch", model="mlp", dataset="digits", optimizer={"name": "sgd"},
                      schedule={"name": "constant"}, lr=lr, batch_size=32, epochs=3, seed=0, protocol="warm_start",
                      chain=(0.1, 0.01, 0.001)) for lr in (0.1, 0.01, 0.001)]
    store = ResultStore(tmp_path, "s")
    with store.lock():
        for k, epochs in enumerate((3, 2)):  # stage 1 diverged after 2 epochs
            [row], manifest = fake_run(stages[k].run_id, epochs=1)
            rows = [{**row, "epoch": e, "split": split, "metric": metric}
                    for e in range(1, epochs + 1) for split, metric in EPOCH_METRICS]
            store.save_run(rows, {**manifest, "epochs_done": epochs, "spec": stages[k].to_json()},
                           {"fc1.weight": np.full((2, 3), k, np.float32)})
    assert [p.name for p in store.runs_dir.glob("*.weights.npz")] == [f"{stages[1].run_id}.weights.npz"]
    start = store.chain_start(stages[2])
    assert (start.stage, start.orders_used) == (1, 5) and (start.weights["fc1.weight"] == 1).all()
    kept = store.runs_dir / f"{stages[1].run_id}.weights.npz"
    kept.write_bytes(kept.read_bytes()[:-30])  # cut short
    assert store.chain_start(stages[2]) is None


def test_a_run_without_its_manifest_does_not_count(tmp_path):
    store = ResultStore(tmp_path, "s")
    with store.lock():
        store.save_run(*fake_run("a"))
        (store.runs_dir / "b.csv").write_text("half a row")  # killed between the two writes
        store.rebuild()
    assert store.finished() == {"a"}
    assert set(pd.read_csv(store.dir / ROWS)["run_id"]) == {"a"}


def test_second_writer_refuses(tmp_path):
    store = ResultStore(tmp_path, "s")
    with store.lock():
        with pytest.raises(BenchError, match="another bench process is writing"):
            with ResultStore(tmp_path, "s").lock():
                pass


def test_no_lock_file_is_left_when_the_writer_ends_or_is_stopped(tmp_path):
    store = ResultStore(tmp_path, "s")
    with store.lock():
        assert (store.dir / LOCK).exists()
    assert not (store.dir / LOCK).exists()
    with pytest.raises(KeyboardInterrupt), store.lock():
        raise KeyboardInterrupt
    assert not (store.dir / LOCK).exists()
    (store.dir / LOCK).write_text("")  # a SIGKILLed writer's: nobody holds it
    with store.lock():
        pass
    assert not (store.dir / LOCK).exists()


def test_a_lock_file_opened_before_its_holder_removed_it_is_not_the_folders_lock(tmp_path):
    """The late opener's flock succeeds on the removed file: it must see that, or two processes would write."""
    store = ResultStore(tmp_path, "s")
    with store.lock():
        late = open(store.dir / LOCK, "a")  # opened while held, locked only after the holder has gone
    with store.lock():
        fcntl.flock(late, fcntl.LOCK_EX | fcntl.LOCK_NB)  # succeeds: nobody holds the removed file
        assert not _same_file(late, store.dir / LOCK)
        with pytest.raises(BenchError, match="another bench process is writing"), ResultStore(tmp_path, "s").lock():
            pass
    late.close()


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    path = tmp_path / "x.json"
    atomic_write(path, json.dumps({"ok": 1}))

    class Boom:
        def __str__(self):
            raise RuntimeError("boom")

    with pytest.raises(TypeError):
        atomic_write(path, Boom())
    assert json.loads(path.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_unwritable_folder_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(BenchError, match="cannot write results to .*file is a file, not a folder: move it away or choose "
                                         "another --out"):
        check_writable(blocker / "out")


def test_a_killed_writers_temp_files_are_cleared_by_the_next_writer(tmp_path):
    store = ResultStore(tmp_path, "s")
    with store.lock():
        store.save_run(*fake_run("a"))
    (store.dir / ".results.csv.x1.tmp").write_text("run_id,stu")  # killed mid-write: never renamed
    (store.runs_dir / ".b.json.x2.tmp").write_text("{")
    with store.lock():
        assert store.finished() == {"a"}
    left = sorted(p.name for p in store.dir.rglob("*") if p.is_file())
    assert left == ["a.csv", "a.json", "manifest.csv", "results.csv.gz"]


def test_a_manifest_without_a_status_is_damaged_not_trusted(tmp_path):
    store = ResultStore(tmp_path, "s")
    with store.lock():
        store.save_run(*fake_run("a"))
        (store.runs_dir / "b.json").write_text(json.dumps({"run_id": "b"}))  # parses, but says nothing of the run
        trusted, damaged = store.verify()
    assert [m["run_id"] for m in trusted] == ["a"] and "b" in damaged


def test_files_follow_the_umask(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "a.csv", "x\n")
    finally:
        os.umask(old)
    assert (tmp_path / "a.csv").stat().st_mode & 0o777 == 0o644  # mkstemp alone gave 0600
