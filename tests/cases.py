"""Shared cases for every backend's tests: each schedule with parameters that exercise it."""

SCHEDULE_CASES = {
    "constant": {},
    "step": {"step_size": 5, "gamma": 0.1},
    "multistep": {"milestones": [15, 30], "gamma": 0.5},
    "exponential": {"gamma": 0.9},
    # the seed experiments' cosine: 0.3 -> 0.01 over 20 epochs, then 0.01 (checked to epoch 40)
    "cosine": {"t_max": 20, "eta_min": 0.01},
    "warmup_cosine": {"warmup_epochs": 5, "t_max": 20, "eta_min": 0.01},
    "warmup_cosine_from_lr": {"warmup_epochs": 3, "t_max": 12, "eta_min": 0.0, "warmup_start_lr": 0.03},
    "cosine_restarts": {"t_0": 4, "t_mult": 2, "eta_min": 0.001},
    "inverse_sqrt": {},
    "polynomial": {"t_max": 30, "power": 2.0},
    "plateau": {"factor": 0.5, "patience": 2, "threshold": 1e-4, "cooldown": 1},
    # a schedule's own base lr, and the timing of schedules applied after each epoch (d2l's)
    "step_own_lr": {"step_size": 5, "gamma": 0.1, "lr": 0.1},
    "constant_own_lr_after_epoch": {"lr": 0.1, "timing": "after_epoch"},
    "inverse_sqrt_own_lr_after_epoch": {"lr": 0.1, "timing": "after_epoch"},
    "cosine_after_epoch": {"t_max": 20, "eta_min": 0.01, "timing": "after_epoch"},
    "multistep_after_epoch": {"milestones": [15, 30], "gamma": 0.5, "timing": "after_epoch"},
}
# Per-step schedules (bench/schedules.py PER_STEP), checked at every step of STEP_EPOCHS epochs of
# STEPS_PER_EPOCH_PER_STEP steps: one-cycle's whole cycle, its last step included.
STEP_CASES = {
    "one_cycle": {"cycle_epochs": 2},
    "one_cycle_linear_three_phase": {"cycle_epochs": 2, "anneal": "linear", "three_phase": True, "pct_start": 0.25,
                                     "div_factor": 10.0, "final_div_factor": 100.0},
    "cyclic": {"min_lr": 0.01, "step_size_up": 3, "step_size_down": 2},
    "cyclic_triangular2": {"min_lr": 0.01, "step_size_up": 2, "mode": "triangular2"},
    "cyclic_exp_range": {"min_lr": 0.01, "step_size_up": 4, "mode": "exp_range", "gamma": 0.9},
    "cosine_per_step": {"t_max": 15, "eta_min": 0.01},  # past t_max: the floor, held
    "range_test": {"min_lr": 1e-4, "steps": 20},  # past steps - 1: on up
}
# A linear warm-up per step in front of every epoch schedule (plateau takes none), checked at every step as
# the per-step schedules are: 18 steps outlast epoch 0, so the factor also multiplies epoch 1's lr.
WARMUP = {"warmup_steps": 18, "warmup_start_factor": 0.1}
WARMUP_CASES = {f"{case}_warmup": {**params, **WARMUP} for case, params in SCHEDULE_CASES.items() if case != "plateau"}
WARMUP_CASES["constant_warmup_from_a_third"] = {"warmup_steps": 5}  # torch's LinearLR start factor, 1/3
STEP_EPOCHS = 2
STEPS_PER_EPOCH_PER_STEP = 12
EPOCHS = 40
BASE_LR = 0.3

# A validation-loss sequence with improvements and plateaus, fed to reduce-on-plateau.
VAL_LOSSES = [1.0 / (1 + e) if e < 8 else 0.12 + 0.001 * ((e * 7) % 5) for e in range(EPOCHS)]


def schedule_name(case: str) -> str:
    """The schedule a case exercises: the longest schedule name the case's name starts with."""
    from bench.schedules import SCHEDULES

    return max((name for name in SCHEDULES if case.startswith(name)), key=len)
