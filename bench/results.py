"""Tidy rows -> CSV, and the run manifest; every write atomic, every run resumable.

Layout of a results folder, one subfolder per study:

    OUT/<study>/runs/<run_id>.csv    the run's rows
    OUT/<study>/runs/<run_id>.json   its manifest entry, written last: the run is finished when this exists
    OUT/<study>/runs/<run_id>.weights.npz   a warm-start stage's network at its end, until the next stage is done
    OUT/<study>/results.csv.gz       every finished run's rows, rebuilt after each run (gzip: pandas reads it as is)
    OUT/<study>/manifest.csv         every run's status and environment
    OUT/<study>/study.json           what the folder holds: the study's definition (see provenance.py)

A kill at any moment leaves either a finished run (its files) or nothing that counts,
so a restarted sweep runs exactly what is missing and the combined CSV never holds a
duplicate or half row. A folder damaged by hand or by a disk is repaired on the next
start: each finished run is verified against its manifest before it is trusted, a damaged
one runs again, and the combined files are rebuilt from the trusted runs alone.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import gzip
import hashlib
import io
import json
import os
import shlex
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import BenchError
from .schema import (  # noqa: F401  (the schema's names, read from here too)
    COLUMNS,
    EPOCH_METRICS,
    FINISHED,
    LEGACY_COLUMNS,
    MANIFEST_COLUMNS,
    NUMERIC_COLUMNS,
    RUN_FACTORS,
    STATUSES,
    TIMING_METRICS,
)
from .spec import ChainStart, RunSpec

WEIGHTS = ".weights.npz"  # a warm-start stage's network at its end: where a resumed chain goes on from


ROWS = "results.csv.gz"  # a study's tidy rows, all runs together; the runs' own files are plain CSV
PLAIN_ROWS = "results.csv"  # the same before it was compressed, and what a hand-made folder may hold
UNREADABLE = (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile, zlib.error)  # a file that is not its text


def read_text(path: Path) -> str:
    """A results file's text; a ``.gz`` one is decompressed."""
    return gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text()


def write_text(path: Path, text: str) -> None:
    """``atomic_write``, compressed for a ``.gz`` name (no timestamp inside: the same rows make the same bytes)."""
    atomic_write(path, gzip.compress(text.encode(), mtime=0) if path.suffix == ".gz" else text)


def atomic_write(path: Path, text: str | bytes) -> None:
    """Write to a temp file beside ``path``, flush to disk, then rename over it. An error names ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:  # the temp name means nothing to the user: the file it was for
        raise type(e)(e.errno, e.strerror, str(path)) from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes it 0600; a results folder is shared as the umask says
        with os.fdopen(fd, "wb") if isinstance(text, bytes) else os.fdopen(fd, "w", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_if_changed(path: Path, text: str) -> None:
    """``atomic_write`` unless the file already holds ``text`` (a resumed sweep writes nothing it need not)."""
    with contextlib.suppress(*UNREADABLE):
        if read_text(path) == text:
            return
    write_text(path, text)


def write_error(folder: Path, e: OSError) -> BenchError:
    """The one line for a write that failed (a full disk, mostly): what was written before is kept."""
    return BenchError(f"cannot write results to {folder}: {e.strerror or e}: free space (or choose another --out) "
                      f"and run the same command again; finished runs are kept")


def to_csv(rows: list[dict], columns: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="raise", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


DENIED = (errno.EACCES, errno.EPERM, errno.EROFS)


def check_writable(folder: Path) -> None:
    """Fail before any run, with one line, if results cannot be written to ``folder`` (made if missing)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".write-test.")
        os.close(fd)
        os.unlink(tmp)
    except (FileExistsError, NotADirectoryError):
        blocker = next(p for p in (folder, *folder.parents) if p.exists() and not p.is_dir())
        raise BenchError(f"cannot write results to {folder}: {blocker} is a file, not a folder: move it away or choose "
                         f"another --out") from None
    except OSError as e:
        if e.errno in DENIED:
            raise BenchError(f"cannot write results to {folder}: permission denied ({e.strerror}): make it writable "
                             f"(chmod u+w) or choose another --out") from None
        raise BenchError(f"cannot write results to {folder}: {e.strerror or e}: choose a writable folder with --out") from None


LOCK = ".lock"  # present only while a bench process writes the folder


def _same_file(f, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(f.fileno()), path.stat())
    except FileNotFoundError:
        return False


class ResultStore:
    """One study's results folder."""

    def __init__(self, out: Path, study: str):
        self.dir = Path(out) / study
        self.runs_dir = self.dir / "runs"

    @contextlib.contextmanager
    def lock(self):
        """Only one bench process writes a study folder at a time; a second one refuses. Every folder
        it writes is checked first: a read-only one is one line before any run, not after the first.
        The lock file is removed on the way out, while still held; a process that opened it just
        before sees that its file is no longer the folder's and takes the lock again on a new one."""
        for folder in (self.dir, self.runs_dir, self.dir / "figures"):
            check_writable(folder)
        path = self.dir / LOCK
        while True:
            f = open(path, "a")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.close()
                raise BenchError(
                    f"another bench process is writing {self.dir}: wait for it to finish or use another --out"
                ) from None
            if _same_file(f, path):
                break
            f.close()  # its holder removed it after we opened it: lock the folder's current file
        try:
            for stale in (*self.dir.glob(".*.tmp"), *self.runs_dir.glob(".*.tmp")):  # a killed writer's, never renamed
                stale.unlink()
            yield self
        finally:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            f.close()

    def manifests(self) -> list[dict]:
        """Every run's manifest entry that parses (a damaged one is left for ``verify`` to name)."""
        entries = []
        for path in sorted(self.runs_dir.glob("*.json")):
            with contextlib.suppress(json.JSONDecodeError, UnicodeDecodeError):
                entry = json.loads(path.read_text())
                if isinstance(entry, dict) and entry.get("run_id") == path.stem and entry.get("status") in STATUSES:
                    entries.append(entry)
        return entries

    def verify(self) -> tuple[list[dict], dict[str, str]]:
        """The manifests whose runs can be trusted, and each damaged run's id with what is wrong.

        A finished run is trusted when its CSV parses, has DESIGN's columns and the rows its
        manifest promises (every epoch's metrics; the exact count where the manifest has it).
        A manifest that does not parse makes its run damaged; a failed run has no rows to check.
        """
        good = {m["run_id"]: m for m in self.manifests()}
        damaged = {p.stem: _why_not_a_manifest(p) for p in self.runs_dir.glob("*.json") if p.stem not in good}
        for run_id, m in list(good.items()):
            if m.get("status") in FINISHED:
                problem = _check_rows(self.runs_dir / f"{run_id}.csv", m)
                if problem:
                    damaged[run_id] = problem
                    del good[run_id]
        return list(good.values()), damaged

    def repair(self) -> set[str]:
        """Rebuild the combined files from the trusted runs; name each damaged one. Returns the finished run ids."""
        trusted, damaged = self.verify()
        for run_id, problem in sorted(damaged.items()):
            fix = "delete it" if COPY in problem else "it counts as not run and runs again"
            print(f"{self.dir.name}: run {run_id} is damaged ({problem}): {fix}", file=sys.stderr)
        self.rebuild(trusted)
        return {m["run_id"] for m in trusted if m["status"] in FINISHED}

    def finished(self) -> set[str]:
        return {m["run_id"] for m in self.verify()[0] if m["status"] in FINISHED}

    def save_run(self, rows: list[dict], manifest: dict, weights: dict | None = None, log: str = "") -> None:
        """The run's rows (and a warm-start stage's network at its end, and what its framework printed,
        ``runs/<run_id>.log``), then its manifest (which makes it count and names the log), then the combined
        files; the previous stage's network is no longer needed.

        A full disk or a write error stops the sweep with one line; what was written before
        stays as it was, because every write goes to a temp file first.
        """
        run_id = manifest["run_id"]
        text = to_csv(rows, COLUMNS)
        manifest = {**manifest, "rows": len(rows), "rows_sha256": digest(text), "log": f"runs/{run_id}.log" if log else ""}
        try:
            atomic_write(self.runs_dir / f"{run_id}.csv", text)
            if log:
                atomic_write(self.runs_dir / f"{run_id}.log", log)
            if weights is not None:
                buf = io.BytesIO()
                np.savez(buf, **weights)  # a zip: each array's CRC-32 is checked when it is read
                atomic_write(self.runs_dir / f"{run_id}{WEIGHTS}", buf.getvalue())
            atomic_write(self.runs_dir / f"{run_id}.json", json.dumps(manifest, indent=1, sort_keys=True))
            spec = RunSpec.from_json(manifest["spec"]) if manifest.get("spec") else None
            if spec and spec.stage:
                with contextlib.suppress(FileNotFoundError):
                    (self.runs_dir / f"{spec.stage_spec(spec.stage - 1).run_id}{WEIGHTS}").unlink()
            self.rebuild(self.verify()[0])
        except OSError as e:
            raise write_error(self.dir, e) from None

    def chain_start(self, first: RunSpec) -> ChainStart | None:
        """Where the chain of ``first`` (its first stage to run) goes on from: the latest finished stage
        before it whose network is kept and intact. None: from the chain's start."""
        finished = {m["run_id"]: m for m in self.verify()[0] if m["status"] in FINISHED}
        before = [first.stage_spec(k).run_id for k in range(first.stage)]
        for k in reversed(range(first.stage)):
            if not all(r in finished for r in before[:k + 1]):
                continue
            with contextlib.suppress(OSError, ValueError, zipfile.BadZipFile), \
                    np.load(self.runs_dir / f"{before[k]}{WEIGHTS}") as npz:
                weights = {name: npz[name] for name in npz.files}
                return ChainStart(k, weights, sum(int(finished[r]["epochs_done"]) for r in before[:k + 1]))
        return None

    def combined(self, manifests: list[dict]) -> dict[str, str]:
        """The combined rows (``ROWS``) and manifest.csv, by name, as the trusted runs make them."""
        frames = []
        for m in manifests:
            rows = self.runs_dir / f"{m['run_id']}.csv"
            if m["status"] in FINISHED or rows.exists():
                frames.append(_body(rows.read_text(), m) if rows.exists() else "")
        return {ROWS: ",".join(COLUMNS) + "\n" + "".join(frames),
                "manifest.csv": to_csv(manifests, MANIFEST_COLUMNS)}

    def rebuild(self, manifests: list[dict] | None = None) -> None:
        """Regenerate the combined rows and manifest.csv from the trusted manifests and their per-run files;
        an uncompressed results.csv from before is the same rows, and goes."""
        manifests = self.verify()[0] if manifests is None else manifests
        for name, text in self.combined(manifests).items():
            write_if_changed(self.dir / name, text)
        with contextlib.suppress(FileNotFoundError):
            (self.dir / PLAIN_ROWS).unlink()

    def read(self, name: str) -> pd.DataFrame:
        """``name`` (``ROWS`` or manifest.csv) as the runs make it, never a damaged copy quietly.

        The file must hold exactly what the trusted runs rebuild; where it does not (cut at a line
        end, a value edited, rows lost, not a file) the rows come from the runs, and one line says
        so with the command that rewrites it. A damaged run is named and left out, as resume would."""
        trusted, damaged = self.verify()
        expected = self.combined(trusted)[name]
        command = f"`{rerun_command(self.dir)}`"
        rewrite = f"{command} rewrites it"
        for run_id, problem in sorted(damaged.items()):
            fix = "delete it" if COPY in problem else f"{command} runs it again"
            _say(f"{self.dir.name}: run {run_id} is damaged ({problem}): left out; {fix}")
        try:
            actual = read_text(self.dir / name)
        except UNREADABLE as e:
            actual, why = None, getattr(e, "strerror", None) or type(e).__name__
        if actual is not None and actual != expected:
            have, want = actual.count("\n") - 1, expected.count("\n") - 1
            why = f"{have} rows where its runs have {want}" if have != want else "a value differs from its runs'"
            lost = sorted(_run_ids(actual) - {m["run_id"] for m in trusted} - set(damaged))
            if lost:  # runs whose files are gone: their rows are not trusted, and the command runs them again
                shown = ", ".join(lost[:3]) + (", ..." if len(lost) > 3 else "")
                why += f"; {len(lost)} runs in it have no files in runs/ ({shown})"
        if actual != expected:
            _say(f"{self.dir / name} does not match the study's runs ({why}): read from the runs instead; {rewrite}")
        return pd.read_csv(io.StringIO(expected))


COPY = "copied under another name"  # a run's files are named by its run_id


def _run_ids(text: str) -> set[str]:
    """The run ids a combined file's rows name (none when it does not parse)."""
    try:
        return set(pd.read_csv(io.StringIO(text), usecols=["run_id"], dtype=str)["run_id"].dropna())
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return set()


def _why_not_a_manifest(path: Path) -> str:
    """Why a runs/*.json is not a run's manifest, in words."""
    try:
        entry = json.loads(path.read_text())
    except (OSError, ValueError):
        return "its manifest does not parse"
    if not isinstance(entry, dict) or "run_id" not in entry:
        return "its manifest is not a run's"
    if entry["run_id"] != path.stem:
        return f"its manifest is run {entry['run_id']}'s, {COPY}: runs/{path.stem}.* are never a run of their own"
    return f"its status {entry.get('status')!r} is not one lrbench writes"


def _body(text: str, manifest: dict) -> str:
    """A run file's rows without their header, in COLUMNS; a file from before RUN_FACTORS gets them from its manifest."""
    header, body = text.split("\n", 1)
    if header.split(",") == COLUMNS:
        return body
    rows = list(csv.DictReader(io.StringIO(text)))
    factors = {c: manifest.get(c) or LATER_DEFAULTS[c] for c in RUN_FACTORS}
    return to_csv([{**r, **factors} for r in rows], COLUMNS).split("\n", 1)[1]


LATER_DEFAULTS = {"init": "torch", "protocol": "fresh"}  # what runs recorded before these fields were all


def digest(text: str) -> str:
    """The SHA-256 of a run's rows as written: any later change to a value shows."""
    return hashlib.sha256(text.encode()).hexdigest()


def _check_rows(path: Path, manifest: dict) -> str | None:
    """What is wrong with a finished run's CSV, or None."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return "its rows file is missing"
    except UnicodeDecodeError:
        return "its rows file is not text"
    if not text.endswith("\n"):
        return "its rows file ends mid-line"
    lines = list(csv.reader(io.StringIO(text)))
    if not lines or lines[0] not in (COLUMNS, LEGACY_COLUMNS):
        return "its rows file has not the columns of the results"
    header, rows = lines[0], lines[1:]
    if any(len(r) != len(header) for r in rows):
        return "a row of its rows file is cut"
    if "rows" in manifest and len(rows) != manifest["rows"]:
        return f"{len(rows)} rows where its manifest promises {manifest['rows']}"
    for row in rows:
        for column in NUMERIC_COLUMNS:
            value = row[header.index(column)]
            try:
                float(value) if value or column != "step" else None
            except ValueError:
                return f"its {column} {value!r} is not a number"
    i = {c: header.index(c) for c in ("epoch", "step", "split", "metric")}
    have = {(r[i["epoch"]], r[i["split"]], r[i["metric"]]) for r in rows if not r[i["step"]]}
    for epoch in range(1, int(manifest.get("epochs_done") or 0) + 1):
        missing = [f"{s}.{m}" for s, m in EPOCH_METRICS if (str(epoch), s, m) not in have]
        if missing:
            return f"epoch {epoch} has no {missing[0]} row"
    if "rows_sha256" in manifest and digest(text) != manifest["rows_sha256"]:
        return "its rows are not those its manifest recorded (their SHA-256 differs): a value was changed"
    return None


def study_folders(folder: Path) -> list[Path]:
    """The study folders under ``folder`` (a results folder or one study's folder): those with rows or runs."""
    folder = Path(folder)
    marks = (ROWS, PLAIN_ROWS, "runs")
    here = [folder] if any((folder / mark).exists() for mark in marks) else []
    return here or sorted({p.parent for mark in marks for p in folder.glob(f"*/{mark}")})


def read_study(folder: Path, name: str, columns: list[str]) -> pd.DataFrame:
    """One study folder's rows (``ROWS``) or manifest.csv: checked against its runs where it has them
    (``ResultStore.read``), else checked as a file (``read_combined``; rows may be a plain results.csv)."""
    if (folder / "runs").is_dir():
        return ResultStore(folder.parent, folder.name).read(name)
    if name == ROWS and not (folder / ROWS).exists() and (folder / PLAIN_ROWS).exists():
        name = PLAIN_ROWS
    fix = f"it has no runs/ to rebuild it from: restore the file, or run the study again (`{rerun_command(folder)}`)"
    return read_combined(folder / name, columns, 4, fix)


def read_results(folder: Path) -> pd.DataFrame:
    """Every study's rows under ``folder`` (a results folder or one study's folder)."""
    folders = study_folders(folder)
    if not folders:
        raise BenchError(f"no results under {folder}: run `bench run STUDY --out {folder}` first")
    return pd.concat([read_study(f, ROWS, LEGACY_COLUMNS) for f in folders], ignore_index=True)


SAID: set[str] = set()  # the notes said in this command (the CLI empties it per command)


def _say(line: str) -> None:
    """A note on stderr, once per command (the report and its figures read the same files)."""
    if line not in SAID:
        SAID.add(line)
        print(f"bench: {line}", file=sys.stderr)


RECORD = "study.json"  # what a folder's runs are: its study and the options it was made with (bench/provenance.py)


def rerun_command(folder: Path) -> str:
    """The `bench run` command that makes ``folder``'s runs again: the study as it was given (a bundled name, or
    the path of the study file it was run from), the options it was made with, every seed and framework it holds,
    and its --out. Finished runs are kept, so it runs only what is missing or damaged."""
    folder = Path(folder)
    try:
        rec = json.loads((folder / RECORD).read_text())
        rec = rec if isinstance(rec, dict) else {}
    except (OSError, ValueError):
        rec = {}
    manifests = ResultStore(folder.parent, folder.name).manifests() if (folder / "runs").is_dir() else []
    study = rec.get("study") or next((m["study"] for m in manifests), folder.name)
    if rec.get("source", "bundled") != "bundled":
        study = rec["source"]
    options = str(rec.get("options", "--quick" if folder.name.endswith("-quick") else "")).replace("--device auto", "")
    seeds = max((int(m["seed"]) for m in manifests), default=0) + 1
    frameworks = sorted({m["framework"] for m in manifests})
    return " ".join(["bench run", shlex.quote(study), *options.split(), *([f"--seeds {seeds}"] if manifests else []),
                     *([f"--frameworks {','.join(frameworks)}"] if frameworks else []),
                     f"--out {shlex.quote(str(folder.parent))}"])


def read_combined(path: Path, columns: list[str], needed: int, fix: str) -> pd.DataFrame:
    """A combined CSV, or one line naming it when it is damaged. Its first ``needed`` columns must be there
    (older manifests lack the newest; older rows lack RUN_FACTORS: give LEGACY_COLUMNS); ``fix`` says how to make it again."""
    try:
        text = read_text(path)
        df = pd.read_csv(io.StringIO(text))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, EOFError, gzip.BadGzipFile,
            zlib.error) as e:
        raise BenchError(f"{path} is damaged ({str(e).splitlines()[0]}): {fix}") from None
    if text and not text.endswith("\n"):  # every writer ends its file with a newline: it was cut short
        raise BenchError(f"{path} is damaged (it ends mid-line: cut short): {fix}")
    if not isinstance(df.index, pd.RangeIndex):  # pandas makes the extra leading fields an index
        raise BenchError(f"{path} is damaged (its rows have more fields than its header): {fix}")
    missing = [c for c in columns[:needed] if c not in df]
    if missing:
        raise BenchError(f"{path} is damaged (no {missing[0]!r} column): {fix}")
    for column in NUMERIC_COLUMNS:
        if column in df and not pd.api.types.is_numeric_dtype(df[column]):
            bad = df[column][pd.to_numeric(df[column], errors="coerce").isna() & df[column].notna()]
            if len(bad):
                raise BenchError(f"{path} is damaged ({column} {bad.iloc[0]!r} is not a number): {fix}")
    return df


def with_run_columns(df: pd.DataFrame, manifest: pd.DataFrame) -> pd.DataFrame:
    """The rows with their run's RUN_FACTORS: rows written before those columns existed take them from the
    manifest, and runs recorded before the manifest had them were all of the defaults (``LATER_DEFAULTS``)."""
    entries = manifest.drop_duplicates("run_id", keep="last").set_index("run_id")
    for column, default in LATER_DEFAULTS.items():
        if column in df and df[column].notna().all():
            continue
        known = entries[column].astype(object).fillna(default).astype(str).to_dict() if column in entries else {}
        df = df.assign(**{column: [known.get(run_id, default) for run_id in df["run_id"]]})
    return df[[*COLUMNS, *(c for c in df.columns if c not in COLUMNS)]]


def read_manifests(folder: Path) -> pd.DataFrame:
    frames = [read_study(f, "manifest.csv", MANIFEST_COLUMNS) for f in study_folders(folder)
              if (f / "manifest.csv").exists() or (f / "runs").is_dir()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=MANIFEST_COLUMNS)
