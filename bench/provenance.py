"""What a study folder holds, so that one folder never mixes two experiments.

``OUT/<study>/study.json`` records the study's definition: a hash of its runs' specs with
the seed and framework left out (more seeds or another framework extend the same
experiment; another size, device, schedule or study file is another one), the specs
themselves, the study file's text (the report reads the claims of a user's study from it)
and the lrbench release that made it. A command may extend the folder's experiment (more seeds,
frameworks or grid points) or run a part of it; a command with runs outside it, or run by
another lrbench release, refuses with one line.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import subprocess
from importlib import metadata
from pathlib import Path

from . import __version__
from .errors import BenchError
from .results import FINISHED, RECORD, ResultStore, write_error, write_if_changed
from .spec import STUDIES_DIR, RunSpec, StudySpec, load_study, parse_study, study_names


@functools.cache
def lrbench_version() -> str:
    """lrbench's release, and the git commit when it runs from a checkout (``0.1.0+g1a2b3c4``)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent, text=True,
                                capture_output=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{__version__}+g{commit}" if commit else __version__


def release(version: str) -> str:
    return str(version).split("+")[0]


def template(spec: RunSpec) -> str:
    """The part of a run's spec that defines the experiment: all but its seed and framework."""
    return dataclasses.replace(spec, framework="", seed=0).to_json()


def record(study: StudySpec, specs: list[RunSpec], options: str) -> dict:
    """The folder record of these runs; ``options`` are the command's options that shaped them."""
    templates = sorted({template(s) for s in specs})
    bundled = study.path.resolve().parent == STUDIES_DIR.resolve()
    return {
        "study": study.name,
        "definition": hashlib.sha1("\n".join(templates).encode()).hexdigest()[:12],
        "options": options,
        "lrbench": release(__version__),
        "source": "bundled" if bundled else str(study.path.resolve()),  # a command repeated from anywhere finds it
        "study_file": (text := study.path.read_text(encoding="utf-8")),
        "study_file_sha256": hashlib.sha256(text.encode()).hexdigest(),  # an edit by hand shows
        "specs": [json.loads(t) for t in templates],
    }


def claim_folder(store: ResultStore, mine: dict) -> None:
    """Record ``mine`` in the folder, or refuse (BenchError) if the folder holds another experiment."""
    path = store.dir / RECORD
    theirs = _read(path)
    if theirs is not None and _edited(theirs):
        raise BenchError(f"{path}: {EDITED}: restore it from a copy, or give these runs another --out")
    fix = (f"give these runs their own folder (--out OTHER), or repeat the options {store.dir} was made with"
           if theirs is None else
           f"give these runs their own folder (--out OTHER), or run {theirs['study']} as {store.dir} was made: "
           f"{theirs['options'] or 'the study as written'}")
    if theirs is None:  # a folder from before the record: its finished runs must all belong
        ours = _templates(mine)
        strangers = [m["run_id"] for m in store.verify()[0]
                     if m["status"] in FINISHED and template(RunSpec.from_json(m["spec"])) not in ours]
        if strangers:
            raise BenchError(f"{store.dir} holds {len(strangers)} runs of another definition of {mine['study']} "
                             f"(e.g. run {strangers[0]}): {fix}")
    elif theirs["lrbench"] != mine["lrbench"]:
        raise BenchError(f"{store.dir} was made by lrbench {theirs['lrbench']}, this is lrbench {mine['lrbench']}: "
                         f"its runs may not compare with new ones; use another --out")
    elif theirs["definition"] != mine["definition"]:
        ours, held = _templates(mine), _templates(theirs)
        if ours < held:  # a part of the folder's experiment: nothing new, the record stays
            return
        if not held <= ours:  # an extension (more lrs in the grid) is the same experiment; anything else is not
            raise BenchError(f"{store.dir} holds another definition of {theirs['study']} ({_difference(theirs, mine)}): "
                             f"{fix}")
    try:
        write_if_changed(path, json.dumps(mine, indent=1, sort_keys=True))
    except OSError as e:
        raise write_error(store.dir, e) from None


def _specs(rec: dict) -> list[dict]:
    """The record's specs with every field of today's RunSpec: a field added since it was written has its default."""
    return [json.loads(RunSpec(**s).to_json()) for s in rec["specs"]]


def _templates(rec: dict) -> set[str]:
    return {json.dumps(s, sort_keys=True) for s in _specs(rec)}


EDITED = "its study text was edited after the runs (it no longer matches its checksum)"


def _edited(rec: dict) -> bool:
    """Whether the record's study text differs from the one it was written with (a record from before the checksum
    cannot tell)."""
    kept = rec.get("study_file_sha256")
    return bool(kept) and hashlib.sha256(str(rec.get("study_file", "")).encode()).hexdigest() != kept


def _read(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        if isinstance(data, dict) and {"definition", "lrbench", "study", "options"} <= set(data):
            return data
    except (json.JSONDecodeError, UnicodeDecodeError):
        pass
    raise BenchError(f"{path} is damaged (not the JSON lrbench writes): restore it, or move the folder aside and "
                     f"run again")


def _difference(theirs: dict, mine: dict) -> str:
    """What makes ours another definition, in words: for a run of ours the folder lacks, the fields in
    which the folder's nearest run differs (a grid the folder has more of is no difference)."""
    def shown(value) -> str:
        return json.dumps(value, sort_keys=True)

    held = _specs(theirs)
    for spec in (s for s in mine["specs"] if s not in held and held):
        def differing(other, spec=spec):
            return [k for k in sorted(set(spec) | set(other)) if spec.get(k) != other.get(k)]

        nearest = min(held, key=lambda h: len(differing(h)))
        return "; ".join(f"{k} {shown(nearest.get(k))} there, {shown(spec.get(k))} here" for k in differing(nearest)[:3])
    return "another study file"


def framework_notes(store: ResultStore, frameworks: list[str]) -> list[str]:
    """One line per framework whose finished runs in the folder were made with another version than the installed one."""
    from backends import FRAMEWORKS

    notes, trusted = [], store.verify()[0]
    for framework in frameworks:
        try:
            installed = metadata.version(FRAMEWORKS[framework].distribution)
        except metadata.PackageNotFoundError:
            continue
        older = {m.get("framework_version", "") for m in trusted
                 if m["framework"] == framework and m["status"] in FINISHED}
        older = sorted(v for v in older if v and installed.split("+")[0] not in v)
        if older:
            notes.append(f"note: {store.dir} has {framework} runs made with {', '.join(older)} (installed: {installed}); "
                         f"they are kept, not rerun; use another --out to rerun them")
    return notes


def folder_study(study_dir: Path, name: str) -> tuple[StudySpec | None, str]:
    """The study whose claims, target and references the report applies to a folder, and why there is none.

    The folder's record says: a bundled study is read from the installed lrbench (its claims
    may have been refined since), a user's study from the text stored when it ran. A folder
    from before the record falls back to the bundled study of that name, if there is one."""
    rec = _read(Path(study_dir) / RECORD)
    if rec is not None and _edited(rec):
        return None, f"{RECORD}: {EDITED}, so its claims are not evaluated: restore it from a copy"
    if rec is None or rec["source"] == "bundled":
        if name in study_names():
            return load_study(name), ""
        return None, f"no definition of study {name!r} is stored with these runs: its claims are not evaluated"
    try:
        return parse_study(rec["study_file"], Path(rec["source"])), ""
    except BenchError as e:  # a stored definition this lrbench no longer reads: the numbers are still shown
        return None, f"the definition stored in {RECORD} no longer loads ({e}): its claims are not evaluated"


def folder_options(study_dir: Path) -> tuple[str, bool]:
    """The options the folder's runs were made with (as `bench run` takes them) and whether they are the quick
    preset; a folder from before the record is quick when its name ends in -quick, as `bench run --quick` names it."""
    rec = _read(Path(study_dir) / RECORD)
    if rec is None:
        quick = Path(study_dir).name.endswith("-quick")
        return ("--quick" if quick else ""), quick
    options = " ".join(o for o in rec["options"].replace("--device auto", "").split())
    return options, "--quick" in options.split()
