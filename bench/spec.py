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
import re
from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from .claims import FILTERS, parse_check
from .data import DATASETS
from .errors import SpecError
from .schedules import SCHEDULES, schedule_params

STUDIES_DIR = Path(__file__).parent / "studies"
MODELS = ("lenet", "mlp")
FIGURES = ("curves", "lr", "steps", "weight_norms")

# Every hyperparameter is explicit so no framework default decides anything silently.
OPTIMIZERS: dict[str, dict[str, object]] = {
    # momentum_form "torch": v = m*v + g, p -= lr*v (PyTorch, Paddle); "keras": v = m*v - lr*g, p += v.
    "sgd": {"momentum": 0.0, "nesterov": False, "weight_decay": 0.0, "momentum_form": "torch"},
    "adagrad": {"eps": 1e-10, "initial_accumulator_value": 0.0, "weight_decay": 0.0},
    "adam": {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0},
    "rmsprop": {"rho": 0.99, "eps": 1e-8, "momentum": 0.0, "centered": False, "weight_decay": 0.0},
}

# key -> expected type(s), for base keys of a study file and of [quick].
BASE_KEYS: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "description": (str,),
    "dataset": (str,),
    "model": (str,),
    "optimizer": (dict,),
    "schedule": (dict,),
    "lr": (int, float),
    "batch_size": (int,),
    "epochs": (int,),
    "seeds": (int,),
    "train_size": (int,),
    "val_size": (int,),
    "normalize": (str, dict),
    "log_every": (int,),
    "collapse_epochs": (int,),
    "dtype": (str,),
    "figures": (list,),
    "init": (str,),
    "protocol": (str,),
    "log_at": (str,),
}
DTYPES = ("float32", "float64")
INITS = ("torch", "glorot")  # see bench/init.py
# fresh: every lr from the same initial weights (the fair comparison); warm_start: one network
# trained at the grid's lrs in order, each continuing from the weights the previous one left.
PROTOCOLS = ("fresh", "warm_start")
# step: the loss every N optimizer steps, counted over the run; batch_id: the batches whose index
# in their epoch is a multiple of N (``if batch_id % N == 0``), batch 0 included.
LOG_AT = ("step", "batch_id")
CHOICES = {"dtype": DTYPES, "init": INITS, "protocol": PROTOCOLS, "log_at": LOG_AT}
VARYING_KEYS = ("lr", "model", "optimizer", "schedule", "batch_size", "protocol")
TOP_KEYS = (*BASE_KEYS, "target", "claims", "reference", "grid", "configs", "quick")
CLAIM_KEYS = ("text", "check", "source")
CLAIM_OPTIONAL = ("per_seed",)
SOURCES = ("seed", "lrbench")  # the original experiment says it, or lrbench does
REFERENCE_KEYS = ("metric", "epoch", "value", "tolerance")
REFERENCE_OPTIONAL = ("step", "where", "note")


# Fields added after reference results were committed enter the run_id only when they differ
# from their default, so that the run_ids of those runs stay what they were.
LATER_FIELDS = {"init": "torch", "protocol": "fresh", "chain": (), "log_at": "step"}


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

    @property
    def optimizer_label(self) -> str:
        return _label(self.optimizer, OPTIMIZERS[self.optimizer["name"]])

    @property
    def schedule_label(self) -> str:
        return _label(self.schedule, SCHEDULES[self.schedule["name"]])

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "RunSpec":
        return cls(**json.loads(text))


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
    def claims(self) -> list[dict]:
        return self.base.get("claims", [])

    @property
    def reference(self) -> list[dict]:
        """The original experiment's printed numbers ([[reference]]), to set beside lrbench's."""
        return self.base.get("reference", [])

    def runs(self, frameworks, *, quick=False, seeds=None, device="auto", epochs=None) -> list[RunSpec]:
        """Expand seeds x configs x grid x frameworks into validated RunSpecs."""
        base = {**self.base, **(self.quick if quick else {}), **({"epochs": epochs} if epochs else {})}
        n_seeds = seeds if seeds is not None else base.get("seeds", 1)
        if n_seeds < 1:
            raise SpecError(f"--seeds must be at least 1, got {n_seeds}")
        keys = list(self.grid)
        points = [dict(zip(keys, combo)) for combo in itertools.product(*self.grid.values())] or [{}]
        # Seed by seed, so a sweep cut short still has every config of its first seeds.
        return [_run_spec(self, {**base, **config, **point}, framework, seed, device)
                for seed in range(n_seeds) for config in self.configs for point in points for framework in frameworks]

    def chain(self) -> tuple[float, ...]:
        """The lrs a warm-start network trains at, in order: the [grid]'s lr list as written."""
        lrs = self.grid.get("lr")
        if not lrs or any("lr" in c for c in self.configs):
            raise SpecError(f"study {self.name!r} ({self.path}): protocol \"warm_start\" needs the lrs as a "
                            f"[grid] lr list (their order is the order they train in), not lr in [[configs]]")
        return tuple(float(lr) for lr in lrs)


def _run_spec(study: StudySpec, m: dict, framework: str, seed: int, device: str) -> RunSpec:
    where = f"study {study.name!r} ({study.path})"
    for key in ("dataset", "model", "lr", "epochs", "batch_size"):
        if key not in m:
            raise SpecError(f"{where} has no {key!r}: add it to the file or to every config")
    if m["model"] not in MODELS:
        raise SpecError(f"{where}: unknown model {m['model']!r}: choose one of {', '.join(MODELS)}")
    if m["dataset"] not in DATASETS:
        raise SpecError(f"{where}: unknown dataset {m['dataset']!r}: choose one of {', '.join(DATASETS)}")
    if not m["lr"] > 0:
        raise SpecError(f"{where}: lr must be > 0, got {m['lr']}: fix the lr in the study file")
    for key, choices in CHOICES.items():
        if key in m and m[key] not in choices:
            raise SpecError(f"{where}: {key} must be one of {', '.join(choices)}, got {m[key]!r}")
    protocol = m.get("protocol", "fresh")
    for key in ("epochs", "batch_size"):
        if m[key] < 1:
            raise SpecError(f"{where}: {key} must be >= 1, got {m[key]}")
    return RunSpec(
        study=study.name,
        framework=framework,
        model=m["model"],
        dataset=m["dataset"],
        optimizer=optimizer_params(m.get("optimizer", {"name": "sgd"}), where),
        schedule=_schedule(m.get("schedule", {"name": "constant"}), where),
        lr=float(m["lr"]),
        batch_size=m["batch_size"],
        epochs=m["epochs"],
        seed=seed,
        device=device,
        train_size=m.get("train_size"),
        val_size=m.get("val_size"),
        normalize=m.get("normalize", "unit"),
        log_every=m.get("log_every", 0),
        collapse_epochs=m.get("collapse_epochs", 3),
        dtype=m.get("dtype", "float32"),
        init=m.get("init", "torch"),
        protocol=protocol,
        chain=study.chain() if protocol == "warm_start" else (),
        log_at=m.get("log_at", "step"),
    )


def optimizer_params(table: dict, where: str = "optimizer") -> dict:
    """The optimizer table with every hyperparameter filled in from OPTIMIZERS."""
    name = table.get("name")
    if name not in OPTIMIZERS:
        raise SpecError(f"{where}: unknown optimizer {name!r}: choose one of {', '.join(OPTIMIZERS)}")
    allowed = OPTIMIZERS[name]
    unknown = sorted(set(table) - set(allowed) - {"name"})
    if unknown:
        raise SpecError(f"{where}: optimizer {name!r} has no parameter {unknown[0]!r}: allowed {', '.join(allowed)}")
    full = {"name": name, **allowed, **{k: v for k, v in table.items() if k != "name"}}
    if full.get("momentum_form", "torch") not in ("torch", "keras"):
        raise SpecError(f"{where}: momentum_form must be 'torch' or 'keras', got {full['momentum_form']!r}")
    return full


def _schedule(table: dict, where: str) -> dict:
    name = table.get("name")
    try:
        params = schedule_params(name, {k: v for k, v in table.items() if k != "name"})
    except SpecError as e:
        raise SpecError(f"{where}: {e}") from None
    return {"name": name, **params}


def _check_reference(entry, path: Path) -> None:
    """A [[reference]] entry: a number the original printed, where lrbench can find its own."""
    if not isinstance(entry, dict) or not set(REFERENCE_KEYS) <= set(entry) <= {*REFERENCE_KEYS, *REFERENCE_OPTIONAL}:
        raise SpecError(f"{path}: each [[reference]] needs the keys {', '.join(REFERENCE_KEYS)} "
                        f"(optional: {', '.join(REFERENCE_OPTIONAL)}), got {entry!r}")
    split, _, metric = str(entry["metric"]).partition(".")
    if split not in ("train", "val") or not metric:
        raise SpecError(f"{path}: [[reference]] metric must be \"train.NAME\" or \"val.NAME\", got {entry['metric']!r}")
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
    if not (path.suffix == ".toml" and path.exists()):
        path = STUDIES_DIR / f"{name_or_path}.toml"
        if not path.exists():
            raise SpecError(
                f"unknown study {name_or_path!r}: choose one of {', '.join(study_names())} or give a path to a .toml file"
            )
    text = path.read_text()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{path}: not valid TOML ({e}): fix the file") from None
    return _validate(data, path, text)


def _line_of(text: str, key: str) -> str:
    for i, line in enumerate(text.splitlines(), 1):
        if re.match(rf"\s*\[*\s*\"?{re.escape(key)}\"?\s*[=\].]", line):
            return f":{i}"
    return ""


def _check_keys(table: dict, allowed, path: Path, text: str, section: str) -> None:
    for key, value in table.items():
        if key not in allowed:
            raise SpecError(
                f"{path}{_line_of(text, key)}: unknown key {key!r} in {section}: allowed keys are {', '.join(allowed)}"
            )
        types = BASE_KEYS.get(key)
        if types and section != "[grid]" and not (isinstance(value, types) and not isinstance(value, bool)):
            names = " or ".join(t.__name__ for t in types)
            raise SpecError(f"{path}{_line_of(text, key)}: {key!r} must be {names}, got {value!r}")


def _validate(data: dict, path: Path, text: str) -> StudySpec:
    _check_keys(data, TOP_KEYS, path, text, "the study")
    grid = data.pop("grid", {})
    configs = data.pop("configs", [{}])
    quick = data.pop("quick", {})
    _check_keys(grid, VARYING_KEYS, path, text, "[grid]")
    for values in grid.values():
        if not isinstance(values, list) or not values:
            raise SpecError(f"{path}: every [grid] entry must be a non-empty list, got {values!r}")
    for config in configs:
        _check_keys(config, VARYING_KEYS, path, text, "[[configs]]")
    _check_keys(quick, BASE_KEYS, path, text, "[quick]")
    target = data.get("target")
    if target is not None and not (isinstance(target, (int, float)) and 0 < target <= 1):
        raise SpecError(f"{path}{_line_of(text, 'target')}: target is a validation accuracy in (0, 1], got {target!r}")
    for claim in data.get("claims", []):
        if not isinstance(claim, dict) or not set(CLAIM_KEYS) <= set(claim) <= {*CLAIM_KEYS, *CLAIM_OPTIONAL}:
            raise SpecError(f"{path}: each [[claims]] needs the keys {', '.join(CLAIM_KEYS)} "
                            f"(optional: {', '.join(CLAIM_OPTIONAL)}), got {claim!r}")
        if claim["source"] not in SOURCES:
            raise SpecError(f"{path}: claim {claim['text']!r}: source must be \"seed\" (the original says it) "
                            f"or \"lrbench\" (ours), got {claim['source']!r}")
        if not isinstance(claim.get("per_seed", False), bool):
            raise SpecError(f"{path}: claim {claim['text']!r}: per_seed is true or false, got {claim['per_seed']!r}")
        parse_check(claim["check"])
    for entry in data.get("reference", []):
        _check_reference(entry, path)
    for fig in data.get("figures", []):
        if fig not in FIGURES:
            raise SpecError(f"{path}: unknown figure {fig!r}: choose from {', '.join(FIGURES)}")
    name = data.get("name", path.stem)
    study = StudySpec(name, data.get("description", ""), path, data, grid, configs, quick)
    study.runs(["check"])  # validate every run now, not mid-sweep
    study.runs(["check"], quick=True)
    return study
