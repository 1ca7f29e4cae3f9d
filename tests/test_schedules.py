"""The reference schedules: the values the seed experiments define, computed by hand."""

import math
import os

import pytest

from backends import FRAMEWORKS
from bench.errors import SpecError
from bench.schedules import PER_STEP, SCHEDULES, Schedule, schedule_params
from tests import native_table
from tests.cases import SCHEDULE_CASES, STEP_CASES, schedule_name


def lrs(name, lr0=0.3, epochs=40, **params):
    s = Schedule(name, lr0, params)
    return [s.lr(e) for e in range(epochs)]


def test_every_schedule_has_a_case():
    assert {schedule_name(c) for c in {**SCHEDULE_CASES, **STEP_CASES}} == set(SCHEDULES)
    assert {schedule_name(c) for c in STEP_CASES} == set(PER_STEP)


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


def steps(name, lr0, n, spe=10, **params):
    s = Schedule(name, lr0, params)
    return [s.lr_at(t, spe) for t in range(n)]


def test_one_cycle_rises_to_its_peak_then_falls_to_peak_over_div_over_final_div():
    """torch's OneCycleLR: start 1/25 of the peak, the peak at step pct_start * total - 1, the floor at the last step."""
    values = steps("one_cycle", 1.0, 40, spe=10, cycle_epochs=4)  # 40 steps: the peak at step 11
    assert values[0] == pytest.approx(1 / 25)
    assert values[11] == pytest.approx(1.0) and max(values) == values[11]
    assert values[-1] == pytest.approx(1 / 25 / 1e4)
    assert all(a < b for a, b in zip(values[:11], values[1:12])) and all(a > b for a, b in zip(values[11:], values[12:]))
    three = steps("one_cycle", 1.0, 40, spe=10, cycle_epochs=4, three_phase=True, anneal="linear")
    assert three[11] == pytest.approx(1.0) and three[22] == pytest.approx(1 / 25)  # back to the start at 2 * 12 - 2
    assert three[5] == pytest.approx(1 / 25 + (1 - 1 / 25) * 5 / 11)  # linear


def test_cyclic_modes():
    tri = steps("cyclic", 1.0, 9, min_lr=0.2, step_size_up=2)
    assert tri == pytest.approx([0.2, 0.6, 1.0, 0.6, 0.2, 0.6, 1.0, 0.6, 0.2])
    tri2 = steps("cyclic", 1.0, 9, min_lr=0.2, step_size_up=2, mode="triangular2")
    assert tri2[2] == pytest.approx(1.0) and tri2[6] == pytest.approx(0.6)  # the second cycle's peak is halved
    exp = steps("cyclic", 1.0, 3, min_lr=0.2, step_size_up=2, mode="exp_range", gamma=0.5)
    assert exp == pytest.approx([0.2, 0.2 + 0.4 * 0.5, 0.2 + 0.8 * 0.25])


def test_cosine_per_step_counts_steps_and_an_epoch_schedule_holds_through_its_epoch():
    per_step = steps("cosine_per_step", 1.0, 12, t_max=10, eta_min=0.0)
    assert per_step[5] == pytest.approx(0.5) and per_step[10:] == [0.0, 0.0]
    epoch = Schedule("step", 1.0, {"step_size": 1, "gamma": 0.5})
    assert [epoch.lr_at(t, 3) for t in range(7)] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25]


def test_one_cycle_must_cover_its_run(tmp_path):
    from bench.spec import load_study

    study = tmp_path / "cycle.toml"
    study.write_text('name = "cycle"\ndataset = "digits"\nmodel = "mlp"\nepochs = 5\nbatch_size = 64\nlr = 0.1\n'
                     'schedule = { name = "one_cycle", cycle_epochs = 4 }\n')
    with pytest.raises(SpecError, match="cycle of 4 epochs ends before the run's 5: set cycle_epochs to at least 5"):
        load_study(str(study))
    with pytest.raises(SpecError, match="three_phase needs pct_start below 0.5"):
        schedule_params("one_cycle", {"cycle_epochs": 2, "three_phase": True, "pct_start": 0.5})


def test_a_warmup_multiplies_the_epoch_schedule_by_a_linear_ramp_per_step():
    """Step s at f(s // steps_per_epoch) * w(s): w from the start factor up to 1 at warmup_steps, the epoch
    schedule on the run's own epoch clock (its milestones do not move), also where the warm-up outlasts an epoch."""
    values = steps("step", 1.0, 9, spe=3, step_size=1, gamma=0.5, warmup_steps=4, warmup_start_factor=0.2)
    assert values == pytest.approx([0.2, 0.4, 0.6, 0.5 * 0.8, 0.5, 0.5, 0.25, 0.25, 0.25])
    default = steps("constant", 0.3, 4, spe=10, warmup_steps=3)
    assert default == pytest.approx([0.1, 0.3 * (1 / 3 + 2 / 9), 0.3 * (1 / 3 + 4 / 9), 0.3])  # torch's LinearLR: 1/3
    after = Schedule("inverse_sqrt", 0.3, {"lr": 0.1, "timing": "after_epoch", "warmup_steps": 2})
    assert [after.lr(e) for e in range(3)] == pytest.approx([0.3, 0.1, 0.1 / math.sqrt(2)])  # epoch rows: no factor
    assert after.lr_at(1, 5) == pytest.approx(0.3 * (1 / 3 + 1 / 3)) and after.lr_at(5, 5) == pytest.approx(0.1)


def test_a_warmup_takes_a_length_in_steps_and_goes_only_in_front_of_an_epoch_schedule():
    for params, message in [
        ({"warmup_start_factor": 0.1}, "warmup_start_factor needs warmup_steps"),
        ({"warmup_steps": 0}, "warmup_steps must be an integer >= 1, got 0"),
        ({"warmup_steps": 10, "warmup_start_factor": 1.0}, r"warmup_start_factor must be a finite number in \(0, 1\)"),
        ({"warmup_steps": 10, "warmup_start_factor": 0}, r"warmup_start_factor must be a finite number in \(0, 1\)"),
    ]:
        with pytest.raises(SpecError, match=message):
            schedule_params("cosine", {"t_max": 10, **params})
    for name, params in [("one_cycle", {"cycle_epochs": 2}), ("plateau", {})]:  # one-cycle warms up on its own
        with pytest.raises(SpecError, match=f"schedule '{name}' has no parameter 'warmup_steps'"):
            schedule_params(name, {**params, "warmup_steps": 10})


def test_docs_frameworks_md_drives_from_the_reference_every_schedule_a_framework_has_no_object_for():
    """The table's third column, written by the core env (tests/native_table.py): every declared schedule its
    second column does not name, so a new schedule changes no framework env's part of the table.
    `BENCH_UPDATE_DOCS=1` rewrites it."""
    rows = native_table.read()
    assert set(rows) == set(FRAMEWORKS), "docs/frameworks.md's table has a row per registered framework"
    wanted = {f: [native, native_table.reference_column(native, SCHEDULES)] for f, (native, _) in rows.items()}
    unknown = {f: sorted(set(native_table.native_names(native)) - set(SCHEDULES)) for f, (native, _) in rows.items()}
    assert not any(unknown.values()), f"schedules no longer declared: {unknown}"
    if os.environ.get("BENCH_UPDATE_DOCS") == "1":
        native_table.write(wanted)
    assert native_table.read() == wanted, "docs/frameworks.md's reference column is stale: BENCH_UPDATE_DOCS=1"


def test_the_reference_column_follows_the_declarations():
    """A schedule declared today and native nowhere lands in every reference column."""
    native = "constant: LambdaLR; step: StepLR"
    assert native_table.reference_column(native, ["constant", "step", "new_one"]) == "new_one"
