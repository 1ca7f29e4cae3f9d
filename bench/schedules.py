"""Reference learning-rate schedules: the single truth every backend must reproduce.

Convention, written down once: epochs are counted from 0 and the lr of epoch ``e``
is ``f(e)``, applied from the first batch of epoch ``e`` to its last. (Result rows
number epochs from 1, so row epoch ``k`` trained at ``f(k - 1)``.) Reduce-on-plateau
also needs the validation loss of each finished epoch.

Per-step schedules (``PER_STEP``) change the lr at every optimizer step instead: steps
are counted from 0 over the whole run, and step ``s`` (batch ``s % steps_per_epoch`` of
epoch ``s // steps_per_epoch``) trains at ``g(s)`` (``Schedule.lr_at``). Their step
counts are in optimizer steps (one-cycle's length in epochs, as torch's ``epochs=``).
They cycle the lr only: torch's cycling of momentum is off (``cycle_momentum=False``).

A linear warm-up per step goes in front of any epoch schedule (``warmup_steps``, and
``warmup_start_factor``, torch's ``LinearLR`` default 1/3 when not given): step ``s``
trains at ``f(s // steps_per_epoch) * w(s)``, with ``w`` rising linearly from the start
factor at step 0 to 1 at step ``warmup_steps`` and 1 after. The epoch schedule keeps the
run's own epoch clock (its milestones do not move by the warm-up), and a warm-up that
outlasts an epoch multiplies whatever the epoch schedule gives there (Goyal et al.'s
gradual warm-up in front of step decay; torch's LinearLR stepped per batch beside an
epoch scheduler on one optimizer).

Two keys every schedule (but plateau) accepts, for experiments written another way:
- ``lr``: the schedule's own base, when it is not the optimizer's lr (d2l's
  ``SquareRootScheduler(lr=0.1)`` under an optimizer built with lr 0.3).
- ``timing = "after_epoch"``: the schedule is called after each epoch, as in
  ``param_group['lr'] = scheduler(epoch)`` at the end of epoch ``epoch``; so epoch 0
  trains at the optimizer's lr and epoch ``e >= 1`` at ``f(e - 1)``. The default,
  ``"epoch"``, is the convention above (torch's ``scheduler.step()`` after each epoch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .errors import SpecError
from .params import ABSENT, Declaration, choice, flag, integer, milestones, number

# Keys every schedule but plateau accepts (see the module docstring); present only when given,
# so that the run_id of a schedule written without them does not change.
COMMON = {"lr": number(ABSENT, gt=0), "timing": choice(ABSENT, "epoch", "after_epoch"),
          "warmup_steps": integer(ABSENT, ge=1), "warmup_start_factor": number(ABSENT, gt=0, lt=1)}
WARMUP_START = 1 / 3  # the warm-up's start factor when not given: torch's LinearLR default


def _declare(params: dict, *rules) -> Declaration:
    return Declaration({**params, **COMMON}, (*rules, _WARMUP_RULE))


_WARMUP_RULE = (lambda p: "warmup_start_factor" not in p or "warmup_steps" in p,
                "warmup_start_factor needs warmup_steps (the warm-up's length in optimizer steps)")


SCHEDULES: dict[str, Declaration] = {
    "constant": _declare({}),
    "step": _declare({"step_size": integer(ge=1), "gamma": number(0.1, gt=0)}),
    "multistep": _declare({"milestones": milestones(), "gamma": number(0.1, gt=0)}),
    "exponential": _declare({"gamma": number(gt=0)}),
    "cosine": _declare({"t_max": integer(ge=1), "eta_min": number(0.0, ge=0)}),
    "warmup_cosine": _declare(
        {"warmup_epochs": integer(ge=1), "t_max": integer(ge=1), "eta_min": number(0.0, ge=0),
         "warmup_start_lr": number(0.0, ge=0)},
        (lambda p: p["warmup_epochs"] < p["t_max"], "warmup_epochs must be below t_max (the cosine needs an epoch)"),
    ),
    "cosine_restarts": _declare({"t_0": integer(ge=1), "t_mult": integer(1, ge=1), "eta_min": number(0.0, ge=0)}),
    "inverse_sqrt": _declare({}),
    "polynomial": _declare({"t_max": integer(ge=1), "power": number(1.0, gt=0)}),
    # per step (PER_STEP): the run's lr is the cycle's peak
    "one_cycle": Declaration(
        {"cycle_epochs": integer(ge=1), "pct_start": number(0.3, gt=0, lt=1), "div_factor": number(25.0, gt=0),
         "final_div_factor": number(1e4, gt=0), "anneal": choice("cos", "cos", "linear"), "three_phase": flag(False)},
        ((lambda p: not p["three_phase"] or p["pct_start"] < 0.5, "three_phase needs pct_start below 0.5"),)),
    "cyclic": Declaration(
        {"min_lr": number(gt=0), "step_size_up": integer(ge=1), "step_size_down": integer(ABSENT, ge=1),
         "mode": choice("triangular", "triangular", "triangular2", "exp_range"), "gamma": number(1.0, gt=0)}),
    "cosine_per_step": Declaration({"t_max": integer(ge=1), "eta_min": number(0.0, ge=0)}),
    # the LR range test's (``bench find-lr``): from min_lr up by a constant factor per step, reaching the
    # run's lr at step ``steps - 1`` (and growing on past it)
    "range_test": Declaration({"min_lr": number(gt=0), "steps": integer(ge=2)}),
    "plateau": Declaration({"factor": number(0.1, gt=0, lt=1), "patience": integer(10, ge=0),
                            "threshold": number(1e-4, ge=0), "cooldown": integer(0, ge=0), "min_lr": number(0.0, ge=0)}),
}


PER_STEP = ("one_cycle", "cyclic", "cosine_per_step", "range_test")  # the lr moves at every step (see the module docstring)


def lr_moves_per_step(schedule: dict) -> bool:
    """Whether the lr moves within an epoch: a per-step schedule, or an epoch schedule behind a warm-up."""
    return schedule["name"] in PER_STEP or warmup(schedule) is not None


def warmup(schedule: dict) -> tuple[int, float] | None:
    """The schedule's per-step linear warm-up as (steps, start factor), or None without one."""
    if "warmup_steps" not in schedule:
        return None
    return schedule["warmup_steps"], float(schedule.get("warmup_start_factor", WARMUP_START))


def warmup_factor(schedule: dict, step: int) -> float:
    """The warm-up's factor at optimizer step ``step`` (from 0): start factor up to 1 at its last step, then 1."""
    steps, start = warmup(schedule) or (1, 1.0)
    return start + (1 - start) * min(step, steps) / steps


def schedule_params(name, params: dict) -> dict:
    """Fill defaults and reject unknown, missing or out-of-range parameters (one clear line each)."""
    if not isinstance(name, str) or name not in SCHEDULES:
        raise SpecError(f"unknown schedule {name!r}: choose one of {', '.join(SCHEDULES)}")
    return SCHEDULES[name].fill("schedule", name, params)


# A floor or a start (cyclic's and the range test's min_lr too): at most the lr they lead from or to.
BELOW_BASE = ("eta_min", "warmup_start_lr", "min_lr")


def check_against_lr(schedule: dict, run_lr: float) -> None:
    """The rules between a schedule and the lr it starts from (frameworks refuse a cosine that climbs)."""
    base = base_lr(schedule, run_lr)
    for key in BELOW_BASE:
        if schedule.get(key, 0) > base:
            raise SpecError(f"schedule {schedule['name']!r}: {key} {schedule[key]:g} is above its base lr {base:g}: "
                            f"lower {key} or raise lr")


def check_against_run(schedule: dict, epochs: int, steps_per_epoch: int) -> None:
    """A warm-up as long as the run or longer never reaches the lr it warms up to; a one-cycle shorter than
    its run would step past its end, which torch and Paddle refuse; its warm-up needs more than one step
    (torch and Paddle divide by its length)."""
    steps = epochs * steps_per_epoch
    if schedule.get("warmup_steps") is not None and schedule["warmup_steps"] >= steps:
        raise SpecError(f"schedule {schedule['name']!r}: its warm-up of {schedule['warmup_steps']} steps is as long as "
                        f"the run's {steps} steps or longer, so the lr never reaches its value: shorten warmup_steps")
    if schedule["name"] != "one_cycle":
        return
    if schedule["cycle_epochs"] < epochs:
        raise SpecError(f"schedule 'one_cycle': its cycle of {schedule['cycle_epochs']} epochs ends before the run's "
                        f"{epochs}: set cycle_epochs to at least {epochs}")
    if schedule["pct_start"] * schedule["cycle_epochs"] * steps_per_epoch <= 1:
        raise SpecError(f"schedule 'one_cycle': pct_start {schedule['pct_start']:g} of "
                        f"{schedule['cycle_epochs'] * steps_per_epoch} steps leaves its warm-up no step: raise pct_start "
                        f"or cycle_epochs")


# What each schedule counts in epochs, and what in optimizer steps: a shorter run (--quick) scales them.
EPOCH_PARAMS = {"step": ("step_size",), "multistep": ("milestones",), "cosine": ("t_max",),
                "warmup_cosine": ("warmup_epochs", "t_max"), "cosine_restarts": ("t_0",), "polynomial": ("t_max",),
                "one_cycle": ("cycle_epochs",), "plateau": ("patience", "cooldown")}
STEP_PARAMS = {"cyclic": ("step_size_up", "step_size_down"), "cosine_per_step": ("t_max",)}  # and "warmup_steps"


def scaled(schedule: dict, epochs: float, steps: float) -> dict:
    """The schedule fitted to a run ``epochs`` times as long in epochs and ``steps`` times in optimizer steps, so
    that a quick run goes through its whole shape: t_max, milestones and cycles shrink with the run (each at least
    1, a patience at least 0); a warm-up stays shorter than its cosine."""
    def fit(value, factor, low=1):
        return [fit(v, factor) for v in value] if isinstance(value, list) else max(low, round(value * factor))

    name, out = schedule["name"], dict(schedule)
    for key in EPOCH_PARAMS.get(name, ()):
        out[key] = fit(schedule[key], epochs, 0 if key in ("patience", "cooldown") else 1)
    for key in (*STEP_PARAMS.get(name, ()), "warmup_steps"):
        if schedule.get(key) is not None:
            out[key] = fit(schedule[key], steps)
    if name == "multistep":
        out["milestones"] = sorted(set(out["milestones"]))
    if name == "warmup_cosine":
        out["t_max"] = max(out["t_max"], out["warmup_epochs"] + 1)
    return out


def base_lr(schedule: dict, run_lr: float) -> float:
    """The lr the schedule's formula starts from: its own ``lr`` if it has one, else the run's."""
    return float(schedule.get("lr", run_lr))


def after_epoch(schedule: dict) -> bool:
    """Whether the schedule is applied after each epoch (epoch 0 at the optimizer's lr, then f(e - 1))."""
    return schedule.get("timing", "epoch") == "after_epoch"


@dataclass
class Schedule:
    """lr(epoch) for the run's lr (``base_lr``); ``observe`` feeds reduce-on-plateau its validation loss."""

    name: str
    base_lr: float
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        self.params = schedule_params(self.name, self.params)
        self._plateau = _Plateau(self.base_lr, **self.params) if self.name == "plateau" else None

    def lr(self, epoch: int) -> float:
        if self._plateau is not None:
            return self._plateau.lr
        if after_epoch(self.params):
            if epoch == 0:
                return self.base_lr
            epoch -= 1
        formula = {k: v for k, v in self.params.items() if k not in COMMON}
        return _FORMULAS[self.name](base_lr(self.params, self.base_lr), epoch, **formula)

    def lr_at(self, step: int, steps_per_epoch: int) -> float:
        """The lr of optimizer step ``step`` (from 0 over the run): a per-step schedule's own, else its
        epoch's times the warm-up's factor."""
        if self.name not in PER_STEP:
            return self.lr(step // steps_per_epoch) * warmup_factor(self.params, step)
        return _STEP_FORMULAS[self.name](self.base_lr, step, steps_per_epoch, **self.params)

    def observe(self, val_loss: float) -> None:
        """Called once after each epoch with its validation loss (only plateau uses it)."""
        if self._plateau is not None:
            self._plateau.step(val_loss)


def _constant(lr0, e):
    return lr0


def _step(lr0, e, step_size, gamma):
    return lr0 * gamma ** (e // step_size)


def _multistep(lr0, e, milestones, gamma):
    return lr0 * gamma ** sum(1 for m in milestones if e >= m)


def _exponential(lr0, e, gamma):
    return lr0 * gamma**e


def _cosine(lr0, e, t_max, eta_min):
    """Cosine from lr0 to eta_min over t_max epochs, then holds eta_min (it never climbs back)."""
    if e >= t_max:
        return eta_min
    return eta_min + (lr0 - eta_min) * (1 + math.cos(math.pi * e / t_max)) / 2


def _warmup_cosine(lr0, e, warmup_epochs, t_max, eta_min, warmup_start_lr):
    """Linear warm-up from warmup_start_lr to lr0, then cosine down to eta_min at t_max, then hold."""
    if e < warmup_epochs:
        return warmup_start_lr + (lr0 - warmup_start_lr) * e / warmup_epochs
    return _cosine(lr0, e - warmup_epochs, t_max - warmup_epochs, eta_min)


def _cosine_restarts(lr0, e, t_0, t_mult, eta_min):
    """SGDR: cosine cycles of t_0, t_0*t_mult, ... epochs, each restarting at lr0."""
    t_cur, t_i = e, t_0
    if t_mult == 1:
        t_cur = e % t_0
    else:
        while t_cur >= t_i:
            t_cur -= t_i
            t_i *= t_mult
    return eta_min + (lr0 - eta_min) * (1 + math.cos(math.pi * t_cur / t_i)) / 2


def _inverse_sqrt(lr0, e):
    return lr0 * (e + 1) ** -0.5


def _polynomial(lr0, e, t_max, power):
    """Polynomial decay to 0 over t_max epochs, then 0 (torch's PolynomialLR; Keras's and Paddle's with end lr 0)."""
    return lr0 * (1 - min(e, t_max) / t_max) ** power


def _anneal(start: float, end: float, pct: float, how: str) -> float:
    if how == "cos":
        return end + (start - end) / 2 * (math.cos(math.pi * pct) + 1)
    return (end - start) * pct + start


def one_cycle_phases(peak: float, total: int, pct_start, div_factor, final_div_factor, three_phase):
    """The phases as torch's OneCycleLR (and Paddle's) define them: (last step, start lr, end lr) each.

    Up from peak / div_factor to the peak by step pct_start * total - 1, then down to
    peak / div_factor / final_div_factor at step total - 1; with three_phase, down to the
    start first (by 2 * pct_start * total - 2), then to the floor."""
    initial = peak / div_factor
    floor = initial / final_div_factor
    if three_phase:
        return [(pct_start * total - 1, initial, peak), (2 * pct_start * total - 2, peak, initial),
                (total - 1, initial, floor)]
    return [(pct_start * total - 1, initial, peak), (total - 1, peak, floor)]


def _one_cycle(lr0, s, steps_per_epoch, cycle_epochs, pct_start, div_factor, final_div_factor, anneal, three_phase):
    phases = one_cycle_phases(lr0, cycle_epochs * steps_per_epoch, pct_start, div_factor, final_div_factor, three_phase)
    start = 0.0
    for i, (end, lr_start, lr_end) in enumerate(phases):
        if s <= end or i == len(phases) - 1:
            return _anneal(lr_start, lr_end, (s - start) / (end - start), anneal)
        start = end


def _cyclic(lr0, s, steps_per_epoch, min_lr, step_size_up, mode, gamma, step_size_down=None):
    """Smith's cyclical lr between min_lr and lr0 (torch's CyclicLR, Paddle's CyclicLR)."""
    size = step_size_up + (step_size_down or step_size_up)
    cycle = 1 + s // size
    x = 1.0 + s / size - cycle
    up = step_size_up / size
    scale = x / up if x <= up else (x - 1) / (up - 1)
    height = (lr0 - min_lr) * scale
    if mode == "triangular2":
        height *= 0.5 ** (cycle - 1)  # torch's 1 / 2 ** (cycle - 1), which overflows past 1024 cycles
    elif mode == "exp_range":
        height *= gamma**s
    return min_lr + height


def _cosine_per_step(lr0, s, steps_per_epoch, t_max, eta_min):
    return _cosine(lr0, s, t_max, eta_min)


def range_factor(peak: float, min_lr: float, steps: int) -> float:
    """The range test's factor per step: ``steps - 1`` of them take min_lr to the peak."""
    return (peak / min_lr) ** (1 / (steps - 1))


def _range_test(lr0, s, steps_per_epoch, min_lr, steps):
    return min_lr * range_factor(lr0, min_lr, steps) ** s


_STEP_FORMULAS = {"one_cycle": _one_cycle, "cyclic": _cyclic, "cosine_per_step": _cosine_per_step,
                  "range_test": _range_test}

_FORMULAS = {
    "constant": _constant,
    "step": _step,
    "multistep": _multistep,
    "exponential": _exponential,
    "cosine": _cosine,
    "warmup_cosine": _warmup_cosine,
    "cosine_restarts": _cosine_restarts,
    "inverse_sqrt": _inverse_sqrt,
    "polynomial": _polynomial,
}


class _Plateau:
    """Reduce-on-plateau (mode min, relative threshold), as torch.optim.lr_scheduler defines it."""

    def __init__(self, lr0, factor, patience, threshold, cooldown, min_lr):
        self.lr = lr0
        self.factor, self.patience, self.threshold = factor, patience, threshold
        self.cooldown, self.min_lr = cooldown, min_lr
        self.best = math.inf
        self.bad_epochs = 0
        self.cooldown_left = 0

    def step(self, val_loss: float) -> None:
        if val_loss < self.best * (1 - self.threshold):
            self.best, self.bad_epochs = val_loss, 0
        else:
            self.bad_epochs += 1
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.bad_epochs = 0
        if self.bad_epochs > self.patience:
            new_lr = max(self.lr * self.factor, self.min_lr)
            if self.lr - new_lr > 1e-8:
                self.lr = new_lr
            self.cooldown_left, self.bad_epochs = self.cooldown, 0
