"""The committed reference results: the report regenerates from their CSVs alone."""

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
    assert list(tmp_path.iterdir()), "no reference results committed"
    regenerated = write_report(tmp_path).read_text()
    assert regenerated == (RESULTS / "report.md").read_text()
    check_page((tmp_path / "report.html").read_text())
    assert len(regenerated.encode()) <= 80_000  # a page, not a dump: the detail is folded and tables stay narrow
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
