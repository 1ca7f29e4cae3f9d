"""What a schedule means in a run, written once for every framework: the lr of each optimizer step.

A framework's own scheduler computes the schedule where its adapter has one
(``NativeSchedules``, backends/base.py); the reference (bench/schedules.py) computes it
where not. Everything around it is the same for every framework and lives here: the
schedule's own base lr, ``timing = "after_epoch"`` (epoch 0 at the optimizer's lr, the
schedule one epoch late), a warm-up's factor in front of an epoch schedule, the plateau's
validation-loss feedback, and whether the lr moves after every step or every epoch. The
backend sets the lr this gives on its optimizer (before each step where it moves per step,
see ``epoch_plan``) and reads back what its optimizer holds.

Why not each framework's warm-up and after-epoch wrappers: they compose differently
(Paddle's LinearWarmup hands over in its own unit from the warm-up's end, Keras's warm-up
exists for the cosine only, torch's SequentialLR restarts the schedule it hands over to),
and each adapter once wrapped them its own way. Setting the lr on the optimizer is the one
idiom every framework has.
"""

from __future__ import annotations

import numpy as np

from .schedules import PER_STEP, Schedule, after_epoch, base_lr, lr_moves_per_step, warmup_factor


class LrControl:
    """The lr of the next optimizer step of one run, advanced step by step and epoch by epoch.

    ``source``: "native" where the framework's own object computes the schedule, "reference"
    where the adapter has none for it (or refuses these parameters: its builder returns None).
    """

    def __init__(self, schedule: dict, lr: float, steps_per_epoch: int, native):
        name, self.schedule, self.run_lr = schedule["name"], schedule, lr
        self.per_step, self.moves_per_step = name in PER_STEP, lr_moves_per_step(schedule)
        # steps_per_epoch: a per-step schedule's length in epochs, and an epoch schedule's in a framework
        # whose schedules count optimizer steps (Optax)
        params = {k: v for k, v in schedule.items() if k != "name"} | {"steps_per_epoch": steps_per_epoch}
        build = native.builders.get(name)
        self.object = build(params, base_lr(schedule, lr)) if build else None
        self.native, self.source = native, "native" if self.object is not None else "reference"
        self.reference = Schedule(name, lr, {k: v for k, v in params.items() if k != "steps_per_epoch"})
        self.steps_per_epoch, self.epoch, self.step = steps_per_epoch, 0, 0

    def lr(self) -> float:
        """The lr of the next step."""
        if self.per_step:
            if self.object is None:
                return self.reference.lr_at(self.step, self.steps_per_epoch)
            return self.native.read(self.object, self.step)
        return self._epoch_lr() * warmup_factor(self.schedule, self.step)

    def _epoch_lr(self) -> float:
        if self.object is None:
            return self.reference.lr(self.epoch)  # its own base, timing and plateau
        if not after_epoch(self.schedule):
            return self.native.read(self.object, self.epoch)
        return self.run_lr if self.epoch == 0 else self.native.read(self.object, self.epoch - 1)

    def epoch_plan(self, steps: int) -> np.ndarray | None:
        """The lr of each of the epoch's ``steps`` where it moves within an epoch (a per-step schedule, a
        warm-up), advancing past them; None where it holds through the epoch (set once, by ``epoch_done``)."""
        first, self.step = self.step, self.step + steps
        if not self.moves_per_step:
            return None
        if not self.per_step:  # the epoch's lr times the warm-up's factor at each step
            epoch_lr = self._epoch_lr()
            return np.array([epoch_lr * warmup_factor(self.schedule, t) for t in range(first, self.step)])
        if self.object is None:
            return np.array([self.reference.lr_at(t, self.steps_per_epoch) for t in range(first, self.step)])
        plan = np.empty(steps)
        for i in range(steps):
            plan[i] = self.native.read(self.object, first + i)
            self.native.advance(self.object, None)
        return plan

    def epoch_done(self, val_loss: float) -> float:
        """Advance an epoch (an epoch schedule's object once, but not after the epoch an after-epoch schedule
        spends at the optimizer's lr; plateau with ``val_loss``) and give the next step's lr."""
        if not self.per_step:
            if self.object is None:
                self.reference.observe(val_loss)
            elif not (after_epoch(self.schedule) and self.epoch == 0):
                self.native.advance(self.object, val_loss)
        self.epoch += 1
        return self.lr()
