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

from .claims import parse_check
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
}
DTYPES = ("float32", "float64")
VARYING_KEYS = ("lr", "model", "optimizer", "schedule", "batch_size")
TOP_KEYS = (*BASE_KEYS, "target", "claims", "grid", "configs", "quick")
CLAIM_KEYS = ("text", "check")


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

    @property
    def run_id(self) -> str:
        blob = json.dumps(dataclasses.asdict(self), sort_keys=True, default=str)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]

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
    if m.get("dtype", "float32") not in DTYPES:
        raise SpecError(f"{where}: dtype must be one of {', '.join(DTYPES)}, got {m['dtype']!r}")
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
        if not isinstance(claim, dict) or sorted(claim) != sorted(CLAIM_KEYS):
            raise SpecError(f"{path}: each [[claims]] needs exactly the keys {', '.join(CLAIM_KEYS)}, got {claim!r}")
        parse_check(claim["check"])
    for fig in data.get("figures", []):
        if fig not in FIGURES:
            raise SpecError(f"{path}: unknown figure {fig!r}: choose from {', '.join(FIGURES)}")
    name = data.get("name", path.stem)
    study = StudySpec(name, data.get("description", ""), path, data, grid, configs, quick)
    study.runs(["check"])  # validate every run now, not mid-sweep
    study.runs(["check"], quick=True)
    return study
