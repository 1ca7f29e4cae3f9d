"""The CLI without any framework: the console script's exit code and `bench list`.

Every bad input and its one-line message is in tests/frameworks/test_bad_inputs.py.
"""

import shlex
import subprocess
import sys
from pathlib import Path

from bench.cli import _parser, main
from bench.spec import study_names


def test_console_script_exit_code(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bench.cli", "run", "nope"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "unknown study" in proc.stderr


def test_list_shows_studies_their_data_and_frameworks(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # nothing in the cache
    (tmp_path / "data" / "mnist").mkdir(parents=True)
    assert main(["list", "--data-dir", str(tmp_path / "data")]) == 0
    lines = capsys.readouterr().out.splitlines()
    studies = {line.split()[0]: line.split()[2:4] for line in lines if line.startswith("  ") and line[2] != " "}
    assert studies["digits"] == ["data", "here"] and studies["lr-sweep"] == ["data", "not"]
    assert "paddle" in studies and "signs" in studies
    under = lines[[line.split()[0] for line in lines].index("lr-sweep") + 1]  # what is missing, and where it goes
    assert "mnist is missing 4 files" in under and str(tmp_path / "data" / "mnist") in under
    assert main(["list", "--data-dir", str(tmp_path / "nothere")]) == 2
    assert capsys.readouterr().err.strip() == (f"bench: error: data directory {tmp_path / 'nothere'} does not exist: "
                                               "create it or fix --data-dir / BENCH_DATA_DIR")


def test_help_names_every_command_with_its_line():
    """`bench --help` is where a user finds the commands: each one is listed there with a line of its own."""
    proc = subprocess.run([sys.executable, "-m", "bench.cli", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    commands = _parser()._subparsers._group_actions[0].choices  # argparse's record of the subcommands
    assert set(commands) == {"list", "run", "all", "perf", "find-lr", "plot", "report"}
    listed = {line.split()[0]: line.split()[1:] for line in proc.stdout.splitlines() if line.startswith("    ")
              and not line.startswith("     ")}
    assert set(listed) == set(commands) and all(listed.values()), proc.stdout


def test_the_readme_is_a_front_page_whose_commands_are_those_of_bench_help():
    """The README stays a front page (10 KB at most); its command list is `bench --help`'s, every command once, in
    its order, and every line of it a command line that `bench` accepts."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert len(readme.encode()) <= 10_000, "the README is a front page: move the detail to docs/"
    block = readme.split("## Commands")[1].split("```")[1]
    lines = [shlex.split(line.split("#")[0]) for line in block.strip().splitlines()]
    assert all(line[0] == "bench" for line in lines)
    assert [line[1] for line in lines] == list(_parser()._subparsers._group_actions[0].choices)
    for line in lines:
        _parser().parse_args(line[1:])  # an option the README shows that bench no longer has exits here


def test_the_readme_lists_every_bundled_study():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    table = next(part for part in readme.split("## The studies")[1].split("\n\n") if part.startswith("| study"))
    assert {line.split("`")[1] for line in table.splitlines() if line.startswith("| `")} == set(study_names())


def test_a_folder_is_named_for_what_the_command_runs():
    """-quick, -N-epochs (only where N is not the study's) and -PROTOCOL: two commands that run different things never
    share a folder, and the command that made a folder names it again (so it resumes there)."""
    from bench.cli import folder_name
    from bench.spec import load_study

    study = load_study("lr-sweep")

    def name(*argv):
        return folder_name(study, _parser().parse_args(["run", "lr-sweep", *argv]))

    assert name() == "lr-sweep" and name("--epochs", "100") == "lr-sweep"
    assert name("--epochs", "10") == "lr-sweep-10-epochs"
    assert name("--protocol", "warm_start") == "lr-sweep-warm_start"
    assert name("--quick") == "lr-sweep-quick" and name("--quick", "--epochs", "3") == "lr-sweep-quick"
    assert name("--quick", "--epochs", "1", "--protocol", "fresh") == "lr-sweep-quick-1-epochs-fresh"
