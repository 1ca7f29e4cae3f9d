"""The committed reference results: the report regenerates from their CSVs.

Their figures are copied beside them, and drawn again only where their rows or the drawing code changed
(bench/drawn.py): the committed ones are those of the committed rows, and tests/test_plots.py holds the drawing
to being deterministic."""

import shutil
from pathlib import Path

import pandas as pd

from bench.report import write_report
from bench.results import COLUMNS, ROWS
from tests.test_answers import check_page

RESULTS = Path(__file__).resolve().parents[1] / "results"


def test_committed_report_regenerates_from_the_csvs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the report's commands name the folder as typed from here: --out results
    tmp_path = tmp_path / "results"
    tmp_path.mkdir()
    for csv in sorted(RESULTS.glob(f"*/{ROWS}")):
        study = tmp_path / csv.parent.name
        study.mkdir()
        shutil.copy(csv, study / ROWS)
        shutil.copy(csv.parent / "manifest.csv", study / "manifest.csv")
        shutil.copy(csv.parent / "study.json", study / "study.json")  # how the runs were made (their options)
    for csv in sorted(RESULTS.glob("*/find-lr.csv")):  # `bench find-lr` folders: their rows alone
        (tmp_path / csv.parent.name).mkdir()
        shutil.copy(csv, tmp_path / csv.parent.name / "find-lr.csv")
    for figures in RESULTS.glob("*/figures"):  # drawn again only where their rows (or the drawing code) differ
        shutil.copytree(figures, tmp_path / figures.parent.name / "figures")
    assert list(tmp_path.iterdir()), "no reference results committed"
    regenerated = write_report(tmp_path).read_text()
    assert regenerated == (RESULTS / "report.md").read_text()
    check_page((tmp_path / "report.html").read_text())
    assert len(regenerated.encode()) <= 90_000  # a page, not a dump: the detail is folded and tables stay narrow
    assert (tmp_path / "report.html").stat().st_size <= 5 * 1024**2  # figures at the size the page shows them
    committed = {p.relative_to(RESULTS) for p in RESULTS.glob("*/figures/*.png")}
    assert {p.relative_to(tmp_path) for p in tmp_path.glob("*/figures/*.png")} == committed


def test_reference_rows_have_the_design_columns():
    for csv in RESULTS.glob(f"*/{ROWS}"):
        df = pd.read_csv(csv)
        assert list(df.columns) == COLUMNS
        assert not df.duplicated().any()
        # every folder holds the three frameworks the design names; some also JAX, added to the same folder
        assert {"torch", "keras", "paddle"} <= set(df["framework"]) <= {"torch", "keras", "paddle", "jax"}, csv.parent.name


def test_the_readme_says_what_the_folders_hold():
    """results/README.md's table of folders: its frameworks x seeds are the manifests' (a folder extended with seeds
    must be told), and its count of the one-cycle runs that train at the 0.175 peak is the report's."""
    import re

    from bench.report import StudyFolder

    readme = (RESULTS / "README.md").read_text()
    rows = re.findall(r"^\| `([\w-]+)/` \|.*\| (\d+) x (\d+)\b[^|]*\|[^|]*\|$", readme, re.M)
    folders = {p.parent.name for p in RESULTS.glob("*/manifest.csv")}
    assert {name for name, _, _ in rows} == folders, "every folder with runs has its row in the README's table"
    for name, frameworks, seeds in rows:
        manifest = pd.read_csv(RESULTS / name / "manifest.csv")
        per_framework = manifest.groupby("framework")["seed"].nunique()
        assert (len(per_framework), per_framework.max()) == (int(frameworks), int(seeds)), name
    trains = re.search(r"one-cycle at the 0\.175 peak trains in (\d+) of (\d+) runs", readme)
    runs = StudyFolder.read(RESULTS / "one-cycle").runs
    peak = runs[runs["config"].astype(str).str.endswith("lr=0.175")]
    assert trains and (int(trains[1]), int(trains[2])) == ((peak["status"] == "done").sum(), len(peak))
