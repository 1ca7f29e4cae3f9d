"""No traceback for any damaged path: every kind of file and folder of a results folder, replaced by the other kind,
emptied or cut, goes through `bench run`, `report` and `plot` (a find-lr folder's, through `bench find-lr` and
`report`, in test_path_walk_find_lr_torch.py: a file of its own, so that the torch env's two test processes share
the two walks). Each command ends either with exit code 0, having rebuilt what the runs make again (and said so), or
with exit code 2 and one error line. (Unreadable files are not walked: the tests may run as root, who reads them all.)"""

import shutil

import pytest

from bench.cli import main

pytestmark = pytest.mark.env_torch  # the tox envs that run this file (see tests/conftest.py)

TINY = """name = "tiny"
dataset = "digits"
model = "mlp"
epochs = 1
batch_size = 32
train_size = 256
val_size = 200
lr = 0.05
[grid]
lr = [0.1, 0.05]
"""


def other_kind(path):
    if path.is_dir():
        shutil.rmtree(path)
        path.write_text("a file where a folder was\n")
    else:
        path.unlink()
        (path / "inside").mkdir(parents=True)


def emptied(path):
    if path.is_dir():
        shutil.rmtree(path)
        path.mkdir()
    else:
        path.write_bytes(b"")


def cut(path):
    if path.is_dir():
        for child in sorted(path.iterdir())[: max(1, len(list(path.iterdir())) // 2)]:
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    else:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])


MUTATIONS = {"the other kind": other_kind, "emptied": emptied, "cut": cut}


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A study folder and a find-lr folder, as the commands write them."""
    base = tmp_path_factory.mktemp("made")
    study = base / "tiny.toml"
    study.write_text(TINY)
    out = base / "out"
    assert main(["run", str(study), "--frameworks", "torch", "--out", str(out)]) == 0
    assert main(["find-lr", str(study), "--frameworks", "torch", "--steps", "12", "--out", str(out)]) == 0
    return study, out


def walked(root):
    """One path of each kind: every folder, and the first file of each name pattern in each folder."""
    seen, paths = set(), []
    for path in sorted(root.rglob("*")):
        key = (path.parent, path.name if path.is_dir() or path.parent.parent == root else path.suffix)
        if key not in seen and ".tmp" not in path.name:
            seen.add(key)
            paths.append(path.relative_to(root))
    return paths


def commands(study, out, first):
    """The commands that read a path: a study folder's, `bench run`, `report` and `plot`; a find-lr folder's,
    `bench find-lr` and `report` (which draws its figure)."""
    if first.parts[0] == "tiny":
        return [["run", str(study), "--frameworks", "torch", "--out", str(out), "--no-plot"], ["report", str(out)],
                ["plot", str(out)]]
    return [["find-lr", str(study), "--frameworks", "torch", "--steps", "12", "--out", str(out)], ["report", str(out)]]


def test_every_damaged_path_of_a_study_folder_is_a_note_or_one_error_line(made, tmp_path, capsys):
    walk(made, tmp_path, capsys, "tiny")


def walk(made, tmp_path, capsys, folder):
    """Every kind of path of ``folder`` (of ``made``), each damage, each command that reads it."""
    study, made_out = made
    capsys.readouterr()
    paths, tried = [p for p in walked(made_out) if p.parts[0] == folder], 0
    kept = {"tiny": ["results.csv.gz", "manifest.csv", "study.json", "runs", "figures", "runs/x.csv", "runs/x.json"],
            "tiny-find-lr": ["find-lr.csv", "suggestions.csv", "failed.csv", "find-lr.json", "figures"]}[folder]
    shown = {p.relative_to(folder).as_posix() for p in paths} | {f"runs/x{p.suffix}" for p in paths if p.parent.name == "runs"}
    assert set(kept) <= shown, shown
    for k, rel in enumerate(paths):
        for name, mutate in MUTATIONS.items():
            out = tmp_path / f"{k}-{name.replace(' ', '-')}"
            shutil.copytree(made_out, out)
            mutate(out / rel)
            for argv in commands(study, out, rel):
                tried += 1
                code = main(argv)
                err = capsys.readouterr().err.strip().splitlines()
                where = f"{rel} {name}, bench {' '.join(argv[:2])}"
                assert code in (0, 2), f"{where}: exit code {code}: {err[-3:]}"
                errors = [line for line in err if line.startswith("bench: error:")]
                if code == 2:
                    assert errors == [err[-1]], f"{where}: {err[-3:]}"
                else:
                    assert not errors, f"{where}: {errors}"
            shutil.rmtree(out)
    print(f"{folder}: {len(paths)} paths x {len(MUTATIONS)} damages: {tried} commands")
