"""Every framework is tested in an env of its own, and that env runs the contract: checked without any framework.

A contract file that lost a framework's marker once let that framework's env run zero contract tests and pass.
"""

import ast
import configparser
from pathlib import Path

from backends import FRAMEWORKS
from tests.conftest import ENVS

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT / "tests" / "frameworks" / "test_contract.py"


def marker(framework: str) -> str:
    return "env_" + framework.replace("-", "_")


def file_markers(path: Path) -> set[str]:
    """The env markers of a test file's module-level ``pytestmark``."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "pytestmark" for t in node.targets):
            return {n.attr for n in ast.walk(node.value) if isinstance(n, ast.Attribute) and n.attr.startswith("env_")}
    return set()


def tox_envs() -> dict[str, str]:
    """Each tox env and its commands."""
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini")
    return {section.split(":", 1)[1]: tox[section].get("commands", "") for section in tox.sections()
            if section.startswith("testenv:")}


def test_every_framework_has_a_tox_env_that_runs_its_marker():
    envs = tox_envs()
    for name in FRAMEWORKS:
        assert name in envs, f"tox.ini has no [testenv:{name}]"
        assert f"-m {marker(name)}" in envs[name].replace("env_{envname}", marker(name)), f"{name}'s env runs another marker"
        assert marker(name) in ENVS, f"tests/conftest.py's ENVS lacks {marker(name)}"


def test_the_contract_runs_in_every_frameworks_env():
    missing = {marker(name) for name in FRAMEWORKS} - file_markers(CONTRACT)
    assert not missing, f"tests/frameworks/test_contract.py's pytestmark lacks {sorted(missing)}"


def test_every_framework_test_file_names_its_envs():
    unmarked = [p.name for p in (ROOT / "tests" / "frameworks").glob("test_*.py") if not file_markers(p) & set(ENVS)]
    assert not unmarked, f"no env marker in its pytestmark: {unmarked}"


def test_the_check_sees_a_contract_that_lost_a_marker(tmp_path):
    lost = tmp_path / "test_contract.py"
    lost.write_text(CONTRACT.read_text().replace("pytest.mark.env_jax", "pytest.mark.slow"))
    assert marker("jax") not in file_markers(lost) and marker("torch") in file_markers(lost)
