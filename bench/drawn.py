"""Which figures are up to date: a figure is drawn again only when the rows it is drawn from changed.

Each figures folder keeps ``.drawn.json``: per set of figures (one study and protocol), a hash of
its rows, of the figures asked for and of the drawing code and its libraries' versions, beside the
files that drawing wrote. A rerun with nothing new then costs a hash, not a redraw.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path

import matplotlib
import pandas as pd
import seaborn as sns

from .results import atomic_write

RECORD = ".drawn.json"
DRAWING_CODE = ("plots.py", "configs.py")  # what turns rows into figures, beside the libraries below


def _code() -> bytes:
    here = Path(__file__).parent
    versions = f"{matplotlib.__version__} {sns.__version__} {pd.__version__}".encode()
    return versions + b"".join((here / name).read_bytes() for name in DRAWING_CODE)


def fingerprint(rows: pd.DataFrame, figures: list[str]) -> str:
    """The hash of what a set of figures shows: its rows (values, columns, order), the figures asked for, the code."""
    h = hashlib.sha256(_code())
    h.update(json.dumps([list(map(str, rows.columns)), [str(t) for t in rows.dtypes], sorted(figures)]).encode())
    h.update(pd.util.hash_pandas_object(rows, index=False).to_numpy().tobytes())
    return h.hexdigest()


class Drawn:
    """The record of one figures folder."""

    def __init__(self, out_dir: Path):
        self.path = Path(out_dir) / RECORD
        self.entries: dict = {}
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            entries = json.loads(self.path.read_text())
            self.entries = entries if isinstance(entries, dict) else {}

    def current(self, name: str, digest: str) -> list[Path] | None:
        """The files drawn from these very rows, when every one of them is still there; else None (draw again)."""
        entry = self.entries.get(name)
        if not isinstance(entry, dict) or entry.get("hash") != digest:
            return None
        paths = [self.path.parent / f for f in entry.get("files", [])]
        return paths if all(p.exists() and p.with_suffix(".svg").exists() for p in paths) else None

    def record(self, name: str, digest: str, paths: list[Path]) -> None:
        self.entries[name] = {"hash": digest, "files": [p.name for p in paths]}
        atomic_write(self.path, json.dumps(self.entries, indent=1, sort_keys=True))
