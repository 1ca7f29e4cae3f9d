"""Every command a message names is one that works: the repair line of a damaged folder and the report's advice,
for a bundled study's -quick folder and a user's study file's -N-epochs folder, each run as printed, from
another working directory."""

import re
import shlex

import pytest

from bench.cli import main
from bench.results import ROWS

pytestmark = pytest.mark.env_torch  # the tox envs that run this file (see tests/conftest.py)

TINY = """name = "tiny"
dataset = "digits"
model = "mlp"
epochs = 3
batch_size = 32
train_size = 320
lr = 0.05
[grid]
lr = [0.1, 0.05]
"""


def commands(text: str) -> list[str]:
    """The `bench ...` commands quoted in a message."""
    return re.findall(r"`(bench run [^`]+)`", text)


def run_printed(command: str, where, capsys) -> str:
    """The command as the user would paste it, from ``where``; its stderr."""
    assert main(shlex.split(command)[1:]) == 0, capsys.readouterr().err
    return capsys.readouterr().err


@pytest.mark.parametrize("case", ["bundled, --quick", "study file, --epochs"])
def test_the_repair_and_advice_commands_work_as_printed(tmp_path, monkeypatch, capsys, case):
    out = tmp_path / "out"
    if case == "bundled, --quick":
        first, folder = ["run", "digits", "--quick"], out / "digits-quick"
    else:
        (tmp_path / "mine").mkdir()
        (tmp_path / "mine" / "tiny.toml").write_text(TINY)
        monkeypatch.chdir(tmp_path / "mine")
        first, folder = ["run", "tiny.toml", "--epochs", "1"], out / "tiny-1-epochs"
    assert main([*first, "--frameworks", "torch", "--out", str(out), "--no-plot"]) == 0
    capsys.readouterr()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    # a cut results.csv.gz and a run whose rows are gone: each message names the command that makes them again
    (folder / ROWS).write_bytes((folder / ROWS).read_bytes()[:100])
    victim = sorted((folder / "runs").glob("*.csv"))[0]
    victim.unlink()
    assert main(["report", str(out)]) == 0
    said = capsys.readouterr().err
    printed = commands(said)
    assert printed and len(set(printed)) == 1, said
    err = run_printed(printed[0], elsewhere, capsys)
    assert "1 of " in err and "runs to do" in err, err  # the damaged run, and only it, runs again
    assert main(["report", str(out)]) == 0
    assert "damaged" not in capsys.readouterr().err and victim.exists()

    if case == "study file, --epochs":  # one seed: the report's advice adds seeds, and its command runs them
        advice = [c for c in commands((out / "report.md").read_text()) if "--seeds 3" in c]
        assert advice, "the report advises more seeds for a one-seed study"
        err = run_printed(advice[0] + " --no-plot", elsewhere, capsys)
        assert "4 of 6 runs to do" in err, err
