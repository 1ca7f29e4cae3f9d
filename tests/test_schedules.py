"""The reference schedules: the values the seed experiments define, computed by hand."""

import math

import pytest

from bench.errors import SpecError
from bench.schedules import SCHEDULES, Schedule
from tests.cases import SCHEDULE_CASES, schedule_name


def lrs(name, lr0=0.3, epochs=40, **params):
    s = Schedule(name, lr0, params)
    return [s.lr(e) for e in range(epochs)]


def test_every_schedule_has_a_case():
    assert {schedule_name(c) for c in SCHEDULE_CASES} == set(SCHEDULES)


def test_cosine_holds_its_floor_after_the_horizon():
    values = lrs("cosine", t_max=20, eta_min=0.01)
    assert values[0] == pytest.approx(0.3)
    assert values[10] == pytest.approx(0.01 + 0.29 / 2)
    assert values[20:] == [0.01] * 20  # never climbs back as torch's CosineAnnealingLR would
    assert all(a > b for a, b in zip(values[:20], values[1:21]))


def test_warmup_cosine_climbs_then_decays():
    values = lrs("warmup_cosine", warmup_epochs=5, t_max=20, eta_min=0.01)
    assert values[:6] == pytest.approx([0.0, 0.06, 0.12, 0.18, 0.24, 0.3])
    assert values[20:] == pytest.approx([0.01] * 20)
    mid = 0.01 + 0.29 * (1 + math.cos(math.pi * 5 / 15)) / 2
    assert values[10] == pytest.approx(mid)


def test_step_multistep_exponential():
    assert lrs("step", 1.0, 12, step_size=5, gamma=0.1) == pytest.approx([1] * 5 + [0.1] * 5 + [0.01] * 2)
    m = lrs("multistep", epochs=31, milestones=[15, 30], gamma=0.5)
    assert m[14] == 0.3 and m[15] == 0.15 and m[29] == 0.15 and m[30] == 0.075
    assert lrs("exponential", 1.0, 3, gamma=0.5) == [1, 0.5, 0.25]


def test_inverse_sqrt_is_the_square_root_schedule():
    assert lrs("inverse_sqrt", 0.3, 4) == pytest.approx([0.3, 0.3 / math.sqrt(2), 0.3 / math.sqrt(3), 0.15])


def test_cosine_restarts_cycle_lengths():
    values = lrs("cosine_restarts", 1.0, 13, t_0=2, t_mult=2, eta_min=0.0)
    restarts = [e for e, v in enumerate(values) if v == 1.0]
    assert restarts == [0, 2, 6]  # cycles of 2, 4, 8 epochs


def test_plateau_reduces_after_patience_and_respects_cooldown():
    s = Schedule("plateau", 1.0, {"factor": 0.5, "patience": 1, "cooldown": 1})
    seen = []
    for loss in [1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]:
        s.observe(loss)
        seen.append(s.lr(0))
    assert seen == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]


def test_bad_parameters_are_named():
    with pytest.raises(SpecError, match="'gama'.*allowed step_size, gamma"):
        Schedule("step", 0.1, {"step_size": 2, "gama": 0.1})
    with pytest.raises(SpecError, match="needs 't_max'"):
        Schedule("cosine", 0.1, {})
    with pytest.raises(SpecError, match="unknown schedule 'linear'"):
        Schedule("linear", 0.1, {})


def test_own_base_and_after_epoch_timing_are_the_originals():
    """d2l's SquareRootScheduler(lr=0.1) and CosineScheduler(20, 0.3, 0.01), called after each epoch, under lr 0.3."""
    sqrt = lrs("inverse_sqrt", 0.3, 5, lr=0.1, timing="after_epoch")
    assert sqrt == pytest.approx([0.3, 0.1, 0.1 / math.sqrt(2), 0.1 / math.sqrt(3), 0.05])
    cosine = lrs("cosine", 0.3, 30, t_max=20, eta_min=0.01, timing="after_epoch")
    assert cosine[:3] == pytest.approx([0.3, 0.3, 0.01 + 0.29 * (1 + math.cos(math.pi / 20)) / 2])
    assert cosine[21:] == pytest.approx([0.01] * 9) and cosine[20] > 0.01
    assert lrs("inverse_sqrt", 0.3, 2, lr=0.1) == pytest.approx([0.1, 0.1 / math.sqrt(2)])  # own base, usual timing
    assert lrs("multistep", 0.3, 17, milestones=[15], gamma=0.5)[15] == 0.15  # torch's timing unchanged


def test_timing_and_own_lr_are_checked():
    with pytest.raises(SpecError, match="timing must be one of epoch, after_epoch"):
        Schedule("cosine", 0.1, {"t_max": 3, "timing": "before"})
    with pytest.raises(SpecError, match="lr must be a finite number > 0, got 0"):
        Schedule("inverse_sqrt", 0.1, {"lr": 0})
    with pytest.raises(SpecError, match="'plateau' has no parameter 'timing'"):
        Schedule("plateau", 0.1, {"timing": "after_epoch"})


def test_polynomial_decays_to_zero_and_stays():
    values = lrs("polynomial", 1.0, 8, t_max=4, power=2.0)
    assert values == pytest.approx([1.0, 0.5625, 0.25, 0.0625, 0.0, 0.0, 0.0, 0.0])
