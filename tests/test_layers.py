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


BACKENDS = BENCH.parent / "backends"
ADAPTERS_LAYER = 2  # the adapters sit beside layer 2: the runner loads them


def imports(path: Path, package: str = "bench") -> set[str]:
    """The bench modules a module imports, and "backends" where it imports the adapters' package."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        modules = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
            [a.name for a in node.names] if isinstance(node, ast.Import) else []
        for module in modules:
            if isinstance(node, ast.ImportFrom) and node.level == 1 and package == "bench":
                names |= {module.split(".")[0]} if module else {a.name for a in node.names}
            elif module.startswith("bench."):
                names.add(module.split(".")[1])
            elif module == "backends" or module.startswith("backends."):
                names.add("backends")
    return names


def test_every_module_is_in_the_map_and_imports_only_from_its_layer_or_those_above():
    layer = layers()
    modules = {p.stem for p in BENCH.glob("*.py")} - {"__init__"}
    assert set(layer) == modules, "bench/__init__.py's map names other modules than bench/ holds"
    upward = {m: sorted(d for d in imports(BENCH / f"{m}.py") if layer.get(d, 0) > layer[m]) for m in modules}
    assert not {m: d for m, d in upward.items() if d} , "imports from a lower layer"


def test_the_adapters_sit_beside_layer_2():
    """A module of layer 1 never imports the adapters' package; an adapter imports nothing of the core below layer 2."""
    layer = layers()
    above = sorted(m for m in layer if "backends" in imports(BENCH / f"{m}.py") and layer[m] < ADAPTERS_LAYER)
    assert not above, "layer-1 modules import backends"
    below = {p.name: sorted(d for d in imports(p, "backends") if layer.get(d, 0) > ADAPTERS_LAYER)
             for p in BACKENDS.glob("*.py")}
    assert not {m: d for m, d in below.items() if d}, "adapters import from below layer 2"


def test_the_adapter_check_sees_an_adapter_import_the_report(tmp_path):
    path = tmp_path / "torch_backend.py"
    path.write_text("import backends.base\nfrom bench.report import write_report\nfrom .base import EvalResult\n")
    assert imports(path, "backends") == {"backends", "report"} and layers()["report"] > ADAPTERS_LAYER


def test_the_check_sees_an_import_from_a_lower_layer(tmp_path):
    path = tmp_path / "spec.py"
    path.write_text("from .report import write_report\nfrom bench.plots import plot_study\n")
    assert imports(path) == {"report", "plots"} and layers()["report"] > layers()["spec"]
