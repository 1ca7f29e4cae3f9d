"""bench/__init__.py's map of the core's layers is true: no module imports from a layer below its own."""

import ast
import re
from pathlib import Path

import bench

BENCH = Path(bench.__file__).parent


def layers() -> dict[str, int]:
    """Each module's layer, read from bench/__init__.py's docstring (cli above them all)."""
    found = {}
    for number, text in re.findall(r"^(\d)\. (.*?)(?=^\d\. |^Then)", bench.__doc__, re.M | re.S):
        for module in re.findall(r"``(\w+)``", text):
            found[module] = int(number)
    return {**found, "cli": 4}


def imports(path: Path) -> set[str]:
    """The bench modules a module imports."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bench."):
            names.add(node.module.split(".")[1])
    return names


def test_every_module_is_in_the_map_and_imports_only_from_its_layer_or_those_above():
    layer = layers()
    modules = {p.stem for p in BENCH.glob("*.py")} - {"__init__"}
    assert set(layer) == modules, "bench/__init__.py's map names other modules than bench/ holds"
    upward = {m: sorted(d for d in imports(BENCH / f"{m}.py") if layer.get(d, 0) > layer[m]) for m in modules}
    assert not {m: d for m, d in upward.items() if d} , "imports from a lower layer"


def test_the_check_sees_an_import_from_a_lower_layer(tmp_path):
    path = tmp_path / "spec.py"
    path.write_text("from .report import write_report\nfrom bench.plots import plot_study\n")
    assert imports(path) == {"report", "plots"} and layers()["report"] > layers()["spec"]
