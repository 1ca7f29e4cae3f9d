"""Study files (TOML) -> validated RunSpecs. A study is data, not code.

A study file has base keys (dataset, model, optimizer, schedule, lr, ...), an optional
``[grid]`` whose keys are lists crossed with each other, an optional ``[[configs]]``
list of partial overrides, and a ``[quick]`` preset of overrides for ``--quick``.
The runs are: every seed x every config x every grid point x every framework.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import pandas as pd

from .claims import FILTERS, check_claim, check_filter, check_metric, parse_check
from .data import CLASSES, DATASETS, SIZES, check_options
from .errors import BenchError, SpecError
from .models import MODELS
from .optimizers import OPTIMIZERS
from .params import Param, choice, flag, integer, number, of_kind
from .schedules import SCHEDULES, check_against_lr, check_against_run, scaled, schedule_params

STUDIES_DIR = Path(__file__).parent / "studies"
FIGURES = ("curves", "lr", "steps", "weight_norms")

DTYPES = ("float32", "float64")
INITS = ("torch", "glorot")  # see bench/init.py
# What each protocol means, as the report says it (fresh is the fair comparison).
PROTOCOL_WORDS = {"fresh": "fresh (every lr from the same initial weights)",
                  "warm_start": "warm start (one network trained at each lr in turn, never rebuilt)"}
PROTOCOLS = tuple(PROTOCOL_WORDS)
# Collapse (one class predicted on the whole validation set) means something only when the set holds
# several examples of every class: a study's val_size must give this many per class.
COLLAPSE_PER_CLASS = 2
# step: the loss every N optimizer steps, counted over the run; batch_id: the batches whose index
# in their epoch is a multiple of N (``if batch_id % N == 0``), batch 0 included; running: the mean
# loss of the N batches before each batch whose index + 1 in its epoch is a multiple of N, reset
# each epoch (``running_loss / N`` printed ``if i % N == N - 1``: a train.running_loss row).
LOG_AT = ("step", "batch_id", "running")

# The base keys of a study file (and of [quick], [[configs]] and the values of [grid]): type, range, default.
BASE: dict[str, Param] = {
    "name": of_kind("text"),
    "description": of_kind("text", ""),
    "dataset": of_kind("text"),  # its name and model's are checked against DATASETS / MODELS by name
    "model": of_kind("text"),
    "optimizer": of_kind("table", {"name": "sgd"}),
    "schedule": of_kind("table", {"name": "constant"}),
    "lr": number(gt=0),
    "batch_size": integer(ge=1),
    "epochs": integer(ge=1),
    "seeds": integer(1, ge=1),
    "train_size": integer(None, ge=1),
    "val_size": integer(None, ge=1),
    "normalize": of_kind("text or table", "unit"),
    "log_every": integer(0, ge=0),
    "collapse_epochs": integer(3, ge=1),
    "dtype": choice("float32", *DTYPES),  # float64 separates the frameworks' math from their float32 rounding
    "figures": of_kind("list", ["curves"]),
    "init": choice("torch", *INITS),
    "protocol": choice("fresh", *PROTOCOLS),
    "log_at": choice("step", *LOG_AT),
    "eval_train": flag(False),  # train.eval_loss / eval_accuracy: the whole training set in eval mode after each epoch
    "floor_cost": flag(False),  # train.cost: the summed batch losses over int(examples / batch_size) (bench/runner.py)
}
MAX_EPOCHS = 100_000  # a run's epochs at most (signs, the longest original, has 1500)
VARYING_KEYS = ("lr", "model", "optimizer", "schedule", "batch_size", "protocol")
TOP_KEYS = (*BASE, "target", "primary", "margin", "margins", "claims", "reference", "grid", "configs", "quick")
PRIMARY = ("val.accuracy", "val.loss", "train.accuracy", "train.loss")  # final values; a loss is better lower
# Differences too small to matter to a user where a study declares none: half a point of accuracy, 0.02 of a loss.
DEFAULT_MARGINS = {"val.accuracy": 0.005, "val.loss": 0.02, "train.accuracy": 0.005, "train.loss": 0.02}
JUDGED = ("val.accuracy", "val.loss")  # the metrics every study is judged by, beside its primary
CLAIM_KEYS = ("text", "check", "source")
CLAIM_OPTIONAL = ("per_seed", "quick", "margin", "untested")
REFERENCE_KEYS = ("metric", "epoch", "value", "tolerance")
REFERENCE_OPTIONAL = ("step", "where", "note")


# Fields added after reference results were committed enter the run_id only when they differ
# from their default, so that the run_ids of those runs stay what they were.
LATER_FIELDS = {"init": "torch", "protocol": "fresh", "chain": (), "log_at": "step", "eval_train": False,
                "floor_cost": False}


@dataclass(frozen=True)
class ChainStart:
    """Where a resumed warm-start chain goes on from: the network its finished stage ``stage`` left,
    and how many epochs' batch orders the stages up to it drew (the next stage draws the ones after)."""

    stage: int
    weights: dict
    orders_used: int


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines one training run; its hash is the run_id."""

    study: str
    framework: str
    model: str
    dataset: str
    optimizer: dict
    schedule: dict
    lr: float
    batch_size: int
    epochs: int
    seed: int
    device: str = "auto"
    train_size: int | None = None
    val_size: int | None = None
    normalize: object = "unit"
    log_every: int = 0
    collapse_epochs: int = 3
    dtype: str = "float32"  # float64 separates the frameworks' math from their float32 rounding
    init: str = "torch"
    protocol: str = "fresh"
    chain: tuple = ()  # warm_start: every lr of the chain, in the order they train
    log_at: str = "step"
    eval_train: bool = False
    floor_cost: bool = False

    def __post_init__(self):
        object.__setattr__(self, "chain", tuple(self.chain))  # JSON gives a list

    @property
    def run_id(self) -> str:
        fields = {k: v for k, v in dataclasses.asdict(self).items() if LATER_FIELDS.get(k, object()) != v}
        blob = json.dumps(fields, sort_keys=True, default=str)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]

    @property
    def stage(self) -> int:
        """Position of this run in its warm-start chain (0 for a fresh run)."""
        return self.chain.index(self.lr) if self.chain else 0

    def stage_spec(self, stage: int) -> RunSpec:
        """Stage ``stage`` of this run's warm-start chain."""
        return dataclasses.replace(self, lr=self.chain[stage])

    @property
    def steps_per_epoch(self) -> int:
        return steps_per_epoch(self.dataset, self.train_size, self.batch_size)

    @property
    def optimizer_label(self) -> str:
        return _label(self.optimizer, OPTIMIZERS[self.optimizer["name"]].defaults)

    @property
    def schedule_label(self) -> str:
        return _label(self.schedule, SCHEDULES[self.schedule["name"]].defaults)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RunSpec:
        return cls(**json.loads(text))


def steps_per_epoch(dataset: str, train_size: int | None, batch_size: int) -> int:
    """Optimizer steps in an epoch: the training examples (train_size, at most the dataset's) in batches, the last partial."""
    examples = min(train_size or SIZES[dataset][0], SIZES[dataset][0])
    return -(-examples // batch_size)


def _label(table: dict, defaults: dict) -> str:
    """'sgd(momentum=0.9)': the name plus every parameter that differs from its default."""
    extra = {k: v for k, v in table.items() if k != "name" and defaults.get(k, object()) != v}
    if not extra:
        return table["name"]
    parts = ",".join(f"{k}={'|'.join(map(str, v)) if isinstance(v, list) else v}" for k, v in sorted(extra.items()))
    return f"{table['name']}({parts})"


@dataclass
class StudySpec:
    name: str
    description: str
    path: Path
    base: dict
    grid: dict = field(default_factory=dict)
    configs: list = field(default_factory=lambda: [{}])
    quick: dict = field(default_factory=dict)

    @property
    def dataset(self) -> str:
        return self.base["dataset"]

    @property
    def figures(self) -> list[str]:
        return self.base.get("figures", ["curves"])

    @property
    def target(self) -> float | None:
        """Validation accuracy whose first epoch the report counts."""
        return self.base.get("target")

    @property
    def primary(self) -> str:
        """The metric (its final value) by which the report picks the best config: the study's answer."""
        return self.base.get("primary", PRIMARY[0])

    @property
    def margins(self) -> dict[str, float]:
        """Per judged metric, the difference too small to matter to a user (``[margins]``; ``margin`` is the
        primary's), else the default."""
        declared = dict(self.base.get("margins", {}))
        if "margin" in self.base:
            declared.setdefault(self.primary, self.base["margin"])
        return {m: declared.get(m, DEFAULT_MARGINS[m]) for m in dict.fromkeys((self.primary, *JUDGED, *declared))}

    @property
    def margin(self) -> float:
        """The margin of ``primary``."""
        return self.margins[self.primary]

    @property
    def claims(self) -> list[dict]:
        return self.base.get("claims", [])

    @property
    def reference(self) -> list[dict]:
        """The original experiment's printed numbers ([[reference]]), to set beside lrbench's."""
        return self.base.get("reference", [])

    def runs(self, frameworks, *, quick=False, seeds=None, device="auto", epochs=None) -> list[RunSpec]:
        """Expand seeds x configs x grid x frameworks into validated RunSpecs."""
        if quick and not self.quick:
            raise SpecError(f"study {self.name!r} ({self.path}) has no [quick] preset: drop --quick, or add a [quick] "
                            f"table of the keys it shortens (docs/study-file.md)")
        base = {**self.base, **(self.quick if quick else {}), **({"epochs": epochs} if epochs else {})}
        n_seeds = seeds if seeds is not None else base.get("seeds", 1)
        if n_seeds < 1:
            raise SpecError(f"--seeds must be at least 1, got {n_seeds}")
        keys = list(self.grid)
        points = [dict(zip(keys, combo)) for combo in itertools.product(*self.grid.values())] or [{}]
        # Seed by seed, so a sweep cut short still has every config of its first seeds.
        return [_run_spec(self, {**base, **config, **point}, framework, seed, device,
                          {**self.base, **config, **point} if quick else None)
                for seed in range(n_seeds) for config in self.configs for point in points for framework in frameworks]

    @property
    def argument(self) -> str:
        """The study as `bench run` takes it: a bundled study's name, else the path of its file."""
        return self.name if self.path.resolve().parent == STUDIES_DIR.resolve() else shlex.quote(str(self.path))

    def quick_banner(self) -> str:
        """What --quick changes, in words: epochs, examples and each schedule's counts fitted to them."""
        full, quick = self.runs(["-"], seeds=1), self.runs(["-"], quick=True, seeds=1)
        changed = {f"{a.schedule['name']} {k} {_shown(a.schedule[k])} -> {_shown(b.schedule[k])}"
                   for a, b in zip(full, quick) for k in a.schedule if a.schedule[k] != b.schedule[k]}
        epochs = {f"{b.epochs} of {a.epochs} epochs" for a, b in zip(full, quick)}
        examples = {f"{b.train_size} of {a.train_size or SIZES[a.dataset][0]} training examples"
                    for a, b in zip(full, quick) if b.train_size != a.train_size}
        fitted = f"; schedules fitted to it: {', '.join(sorted(changed))}" if changed else ""
        return f"{self.name}: quick: {', '.join([*sorted(epochs), *sorted(examples)])}{fitted}"

    def chain(self) -> tuple[float, ...]:
        """The lrs a warm-start network trains at, in order: the [grid]'s lr list as written."""
        lrs = self.grid.get("lr")
        if not lrs or any("lr" in c for c in self.configs):
            raise SpecError(f"study {self.name!r} ({self.path}): protocol \"warm_start\" needs the lrs as a "
                            f"[grid] lr list (their order is the order they train in), not lr in [[configs]]")
        return tuple(float(lr) for lr in lrs)


def _run_spec(study: StudySpec, m: dict, framework: str, seed: int, device: str, full: dict | None = None) -> RunSpec:
    """One run of the study: ``m``, its merged values. ``full``: the same run as written, when ``m`` is its
    quick preset: the schedule's epoch and step counts are scaled to the quick run's."""
    where = f"study {study.name!r} ({study.path})"
    for key in ("dataset", "model", "lr", "epochs", "batch_size"):
        if key not in m:
            raise SpecError(f"{where} has no {key!r}: add it to the file or to every config")
    if m["model"] not in MODELS:
        raise SpecError(f"{where}: unknown model {m['model']!r}: choose one of {', '.join(MODELS)}")
    if m["dataset"] not in DATASETS:
        raise SpecError(f"{where}: unknown dataset {m['dataset']!r}: choose one of {', '.join(DATASETS)}")
    value = {key: m.get(key, param.default) for key, param in BASE.items()}
    try:
        check_options(value["dataset"], value["normalize"], value["train_size"], value["val_size"])
    except BenchError as e:  # a DataError: the data options are the study file's
        raise SpecError(f"{where}: {e}") from None
    judged = COLLAPSE_PER_CLASS * CLASSES[value["dataset"]]
    if value["val_size"] is not None and value["val_size"] < judged:
        raise SpecError(f"{where}: val_size {value['val_size']} is too small to judge collapse (a model that predicts "
                        f"one class on the validation set is flagged collapsed): give at least {judged} "
                        f"({COLLAPSE_PER_CLASS} per class of {value['dataset']})")
    if value["epochs"] > MAX_EPOCHS:
        raise SpecError(f"{where}: epochs {value['epochs']} is more than {MAX_EPOCHS}: a typo must not start a sweep "
                        f"of years; give fewer epochs")
    examples = value["train_size"] or SIZES[value["dataset"]][0]
    if value["batch_size"] > examples:
        raise SpecError(f"{where}: batch_size {value['batch_size']} is larger than its {examples} training examples: "
                        f"lower batch_size or raise train_size")
    schedule = _schedule(value["schedule"], where, float(value["lr"]))
    if full is not None:
        schedule = scaled(schedule, *_quick_factors(value, {key: full.get(key, p.default) for key, p in BASE.items()}))
    try:
        check_against_run(schedule, value["epochs"], steps_per_epoch(value["dataset"], examples, value["batch_size"]))
    except SpecError as e:
        raise SpecError(f"{where}: {e}") from None
    return RunSpec(
        study=study.name,
        framework=framework,
        model=value["model"],
        dataset=value["dataset"],
        optimizer=optimizer_params(value["optimizer"], where),
        schedule=schedule,
        lr=float(value["lr"]),
        batch_size=value["batch_size"],
        epochs=value["epochs"],
        seed=seed,
        device=device,
        train_size=value["train_size"],
        val_size=value["val_size"],
        normalize=value["normalize"],
        log_every=value["log_every"],
        collapse_epochs=value["collapse_epochs"],
        dtype=value["dtype"],
        init=value["init"],
        protocol=value["protocol"],
        chain=study.chain() if value["protocol"] == "warm_start" else (),
        log_at=value["log_at"],
        eval_train=value["eval_train"],
        floor_cost=value["floor_cost"],
    )


def optimizer_params(table: dict, where: str = "optimizer") -> dict:
    """The optimizer table checked against its declaration, every hyperparameter filled in."""
    name = table.get("name")
    if not isinstance(name, str) or name not in OPTIMIZERS:
        raise SpecError(f"{where}: unknown optimizer {name!r}: choose one of {', '.join(OPTIMIZERS)}")
    try:
        return {"name": name, **OPTIMIZERS[name].fill("optimizer", name, {k: v for k, v in table.items() if k != "name"})}
    except SpecError as e:
        raise SpecError(f"{where}: {e}") from None


def _shown(value) -> str:
    if isinstance(value, list):
        return f"[{', '.join(map(str, value))}]"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _quick_factors(quick: dict, full: dict) -> tuple[float, float]:
    """How much shorter the quick run is than the run as written: in epochs, and in optimizer steps."""
    def steps(m):
        return m["epochs"] * steps_per_epoch(m["dataset"], m["train_size"], m["batch_size"])

    return quick["epochs"] / full["epochs"], steps(quick) / steps(full)


def _schedule(table: dict, where: str, lr: float) -> dict:
    name = table.get("name")
    try:
        schedule = {"name": name, **schedule_params(name, {k: v for k, v in table.items() if k != "name"})}
        check_against_lr(schedule, lr)
    except SpecError as e:
        raise SpecError(f"{where}: {e}") from None
    return schedule


def _check_reference(entry, path: Path) -> None:
    """A [[reference]] entry: a number the original printed, where lrbench can find its own."""
    if not isinstance(entry, dict) or not set(REFERENCE_KEYS) <= set(entry) <= {*REFERENCE_KEYS, *REFERENCE_OPTIONAL}:
        raise SpecError(f"{path}: each [[reference]] needs the keys {', '.join(REFERENCE_KEYS)} "
                        f"(optional: {', '.join(REFERENCE_OPTIONAL)}), got {entry!r}")
    check_metric(entry["metric"], f"{path}: [[reference]]")
    for key in ("value", "tolerance"):
        if isinstance(entry[key], bool) or not isinstance(entry[key], (int, float)):
            raise SpecError(f"{path}: [[reference]] {key} must be a number, got {entry[key]!r}")
    for key in ("epoch", "step"):
        if key in entry and (isinstance(entry[key], bool) or not isinstance(entry[key], int) or entry[key] < 1):
            raise SpecError(f"{path}: [[reference]] {key} counts from 1, got {entry[key]!r}")
    where = entry.get("where", {})
    if not isinstance(where, dict) or not set(where) <= set(FILTERS):
        raise SpecError(f"{path}: [[reference]] where must be a table of filters ({', '.join(FILTERS)}), got {where!r}")


def study_names() -> list[str]:
    return sorted(p.stem for p in STUDIES_DIR.glob("*.toml"))


def bundled_figures() -> dict[str, list[str]]:
    """The figures each bundled study asks for, by study name."""
    return {name: load_study(name).figures for name in study_names()}


def load_study(name_or_path: str) -> StudySpec:
    """A bundled study by name, or any study file by path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" and not path.exists():
        raise SpecError(f"no study file at {path}: check the path, or name a bundled study ({', '.join(study_names())})")
    if not (path.suffix == ".toml" and path.exists()):
        path = STUDIES_DIR / f"{name_or_path}.toml"
        if not path.exists():
            raise SpecError(
                f"unknown study {name_or_path!r}: choose one of {', '.join(study_names())} or give a path to a .toml file"
            )
    if not path.is_file():
        raise SpecError(f"{path} is not a file: give the path of a study's .toml file")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpecError(f"{path}: not UTF-8 text (byte {e.start}): save the study file as UTF-8") from None
    if text.startswith("\ufeff"):
        raise SpecError(f"{path} starts with a byte-order mark (UTF-8 with BOM), which TOML does not allow: save it "
                        f"as UTF-8 without BOM")
    return parse_study(text, path)


def parse_study(text: str, path: Path) -> StudySpec:
    """A study from its file's text (``path`` names it in messages)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{path}: not valid TOML ({e}): fix the file") from None
    return _validate(data, path, text)


SECTIONS = {"the study": "", "[grid]": "grid", "[[configs]]": "configs", "[quick]": "quick"}


def _line_of(text: str, key: str, section: str = "the study", nth: int = 0) -> str:
    """``:N``, the line where ``key`` is set in ``section`` (of SECTIONS; the ``nth`` [[configs]] table), or ''."""
    want, current, tables = SECTIONS.get(section, ""), "", -1
    for i, line in enumerate(text.splitlines(), 1):
        header = re.match(r"\s*(\[\[?)\s*\"?([\w.-]+)\"?\s*\]", line)
        if header:
            current = header.group(2)
            tables += current == want and header.group(1) == "[["
            if want == "" and current == key:  # a table of the study's own: [optimizer]
                return f":{i}"
            continue
        if current == want and (want != "configs" or tables == nth) and re.match(rf"\s*\"?{re.escape(key)}\"?\s*[=.]", line):
            return f":{i}"
    return _line_of(text, want) if want else ""  # written inline: grid = { lr = [...] }


def _check_keys(table, allowed, path: Path, text: str, section: str, nth: int = 0) -> None:
    """Every key known, every value of the kind and range BASE declares (each value of a [grid] list too);
    a message points at the key's line in its section (the ``nth`` [[configs]] table)."""
    if not isinstance(table, dict):
        raise SpecError(f"{path}: {section} must be a table of keys, got {table!r}")
    for key, value in table.items():
        where = _line_of(text, key, section, nth)
        if key not in allowed:
            raise SpecError(
                f"{path}{where}: unknown key {key!r} in {section}: allowed keys are {', '.join(allowed)}"
            )
        param = BASE.get(key)
        if section == "[grid]":
            if not isinstance(value, list) or not value:
                raise SpecError(f"{path}{where}: every [grid] entry must be a non-empty list, got {value!r}")
            bad = next((v for v in value if param and not param.valid(v)), None)
            if bad is not None:
                raise SpecError(f"{path}{where}: each [grid] {key} must be {param.rule}, got {bad!r}")
        elif param and not param.valid(value):
            raise SpecError(f"{path}{where}: {key} must be {param.rule}, got {value!r}")


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _validate(data: dict, path: Path, text: str) -> StudySpec:
    _check_keys(data, TOP_KEYS, path, text, "the study")
    grid = data.pop("grid", {})
    configs = data.pop("configs", [{}])
    quick = data.pop("quick", {})
    _check_keys(grid, VARYING_KEYS, path, text, "[grid]")
    if not isinstance(configs, list):
        raise SpecError(f"{path}: configs must be a list of tables ([[configs]]), got {configs!r}")
    for nth, config in enumerate(configs):
        _check_keys(config, VARYING_KEYS, path, text, "[[configs]]", nth)
    _check_keys(quick, BASE, path, text, "[quick]")
    target = data.get("target")
    if target is not None and not (isinstance(target, (int, float)) and 0 < target <= 1):
        raise SpecError(f"{path}{_line_of(text, 'target')}: target is a validation accuracy in (0, 1], got {target!r}")
    if data.get("primary", PRIMARY[0]) not in PRIMARY:
        raise SpecError(f"{path}{_line_of(text, 'primary')}: primary is one of {', '.join(PRIMARY)}, got {data['primary']!r}")
    if "margin" in data and not _positive(data["margin"]):
        raise SpecError(f"{path}{_line_of(text, 'margin')}: margin is a number above 0 in the units of primary, "
                        f"got {data['margin']!r}")
    margins = data.get("margins", {})
    if not isinstance(margins, dict):
        raise SpecError(f"{path}{_line_of(text, 'margins')}: margins is a table of metric = margin ([margins]), "
                        f"got {margins!r}")
    for metric, value in margins.items():
        if metric not in PRIMARY:
            raise SpecError(f"{path}{_line_of(text, metric)}: [margins] has {metric!r}: allowed are {', '.join(PRIMARY)}")
        if not _positive(value):
            raise SpecError(f"{path}{_line_of(text, metric)}: the margin of {metric} is a number above 0 in its units, "
                            f"got {value!r}")
    for section in ("claims", "reference"):
        if not isinstance(data.get(section, []), list):
            raise SpecError(f"{path}: {section} must be a list of tables ([[{section}]]), got {data[section]!r}")
    for claim in data.get("claims", []):
        if not isinstance(claim, dict) or not set(CLAIM_KEYS) <= set(claim) <= {*CLAIM_KEYS, *CLAIM_OPTIONAL}:
            raise SpecError(f"{path}: each [[claims]] needs the keys {', '.join(CLAIM_KEYS)} "
                            f"(optional: {', '.join(CLAIM_OPTIONAL)}), got {claim!r}")
        for key in ("text", "check", "source"):  # source: who says it, free text ("seed", "lrbench" bundled)
            if not isinstance(claim[key], str) or not claim[key].strip():
                raise SpecError(f"{path}: a claim's {key} must be a non-empty string, got {claim[key]!r}")
        for key in ("per_seed", "quick"):
            if not isinstance(claim.get(key, False), bool):
                raise SpecError(f"{path}: claim {claim['text']!r}: {key} is true or false, got {claim[key]!r}")
        if "untested" in claim and not (isinstance(claim["untested"], str) and claim["untested"].strip()):
            raise SpecError(f"{path}: claim {claim['text']!r}: untested says why the runs cannot settle it, got "
                            f"{claim['untested']!r}")
        if "margin" in claim and not _positive(claim["margin"]):
            raise SpecError(f"{path}: claim {claim['text']!r}: margin is a number above 0 (in the units of the numbers "
                            f"it compares), got {claim['margin']!r}")
        parse_check(claim["check"])
    for entry in data.get("reference", []):
        _check_reference(entry, path)
    for fig in data.get("figures", []):
        if fig not in FIGURES:
            raise SpecError(f"{path}: unknown figure {fig!r}: choose from {', '.join(FIGURES)}")
    name = data.get("name", path.stem)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", name) or ".." in name:
        raise SpecError(f"{path}{_line_of(text, 'name')}: name {name!r} is also a folder name: start with an ASCII "
                        f"letter or digit, then up to 99 ASCII letters, digits, '-', '_' or '.' (no '..')")
    study = StudySpec(name, data.get("description", ""), path, data, grid, configs, quick)
    runs = study.runs(["check"]) + (study.runs(["check"], quick=True) if quick else [])  # every run checked now
    configs = pd.DataFrame([{"lr": r.lr, "model": r.model, "optimizer": r.optimizer_label,
                             "schedule": r.schedule_label, "batch_size": r.batch_size} for r in runs])
    last = max(r.epochs for r in study.runs(["check"]))  # the study as written
    for claim in study.claims:
        try:
            check_claim(claim["check"], configs, last)
        except SpecError as e:
            raise SpecError(f"{path}: claim {claim['text']!r}: {e}") from None
    for entry in data.get("reference", []):
        if entry.get("epoch", 0) > last:
            raise SpecError(f"{path}: [[reference]] {entry['metric']} at epoch {entry['epoch']}: the study's runs end at "
                            f"epoch {last}: give an epoch from 1 to {last}")
        if entry.get("where"):
            check_filter(entry["where"], configs, f"{path}: [[reference]] {entry['metric']} where {entry['where']}")
    return study
