"""docs/study-file.md's example is a study that loads, and names every key a study file accepts."""

import re
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from bench.claims import FILTERS
from bench.spec import CLAIM_KEYS, CLAIM_OPTIONAL, REFERENCE_KEYS, REFERENCE_OPTIONAL, TOP_KEYS, VARYING_KEYS, load_study

DOC = Path(__file__).parents[1] / "docs" / "study-file.md"


def example() -> str:
    return re.search(r"```toml\n(.*?)```", DOC.read_text(), re.S).group(1)


def test_the_example_loads_and_plans_its_runs(tmp_path):
    path = tmp_path / "my-digits.toml"
    path.write_text(example())
    study = load_study(str(path))
    runs = study.runs(["torch"])
    assert len(runs) == 2 * 4 * 2  # 2 configs x the grid's 4 points, at 2 seeds
    quick = study.runs(["torch"], quick=True)
    assert len(quick) == 8 and {r.epochs for r in quick} == {3}


def test_the_example_names_every_key():
    data = tomllib.loads(example())
    assert set(data) == set(TOP_KEYS)
    assert set(data["grid"]) | set(data["configs"][0]) | {"model", "batch_size", "protocol"} >= set(VARYING_KEYS)
    assert set().union(*data["claims"]) == {*CLAIM_KEYS, *CLAIM_OPTIONAL}
    assert set().union(*data["reference"]) == {*REFERENCE_KEYS, *REFERENCE_OPTIONAL}
    assert all(f in example() for f in FILTERS)  # every filter a claim can use is named
