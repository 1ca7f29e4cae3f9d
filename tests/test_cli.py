"""The CLI without any framework: the console script's exit code and `bench list`.

Every bad input and its one-line message is in tests/frameworks/test_bad_inputs.py.
"""

import subprocess
import sys

from bench.cli import main


def test_console_script_exit_code(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bench.cli", "run", "nope"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "unknown study" in proc.stderr


def test_list_shows_studies_and_frameworks(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "lr-sweep" in out and "signs" in out and "paddle" in out
