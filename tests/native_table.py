"""docs/frameworks.md's table of the schedules each framework computes with its own object.

Each framework's env owns its row's second column (the objects its adapter builds, tests/frameworks/test_contract.py);
the core env owns the third (every declared schedule the second does not name: driven from the reference), so a new
schedule asks no contributor to install a framework they did not touch. `BENCH_UPDATE_DOCS=1` rewrites what the
env owns.
"""

from pathlib import Path

PAGE = Path(__file__).resolve().parents[1] / "docs" / "frameworks.md"
START, END = "<!-- native-schedules:start -->", "<!-- native-schedules:end -->"
HEADER = ["| framework | its own scheduler object, per schedule | driven from the reference |", "|---|---|---|"]


def read() -> dict[str, list[str]]:
    """framework -> [its native column, its reference column]."""
    text = PAGE.read_text()
    body = text[text.index(START) + len(START):text.index(END)].strip().splitlines()[2:]
    return {cells[0]: cells[1:3] for cells in ([c.strip() for c in line.split("|")[1:-1]] for line in body)}


def write(rows: dict[str, list[str]]) -> None:
    text = PAGE.read_text()
    start, end = text.index(START) + len(START), text.index(END)
    table = [*HEADER, *(f"| {f} | {rows[f][0]} | {rows[f][1]} |" for f in sorted(rows))]
    PAGE.write_text(text[:start] + "\n" + "\n".join(table) + "\n" + text[end:])


def native_names(column: str) -> list[str]:
    """The schedules a native column names ("constant: LambdaLR; step: StepLR" -> constant, step)."""
    return [entry.split(":", 1)[0].strip() for entry in column.split("; ") if entry.strip() not in ("", "-")]


def reference_column(native: str, declared) -> str:
    return ", ".join(n for n in declared if n not in native_names(native)) or "-"
