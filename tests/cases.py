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
    "plateau": {"factor": 0.5, "patience": 2, "threshold": 1e-4, "cooldown": 1},
}
EPOCHS = 40
BASE_LR = 0.3

# A validation-loss sequence with improvements and plateaus, fed to reduce-on-plateau.
VAL_LOSSES = [1.0 / (1 + e) if e < 8 else 0.12 + 0.001 * ((e * 7) % 5) for e in range(EPOCHS)]


def schedule_name(case: str) -> str:
    return "warmup_cosine" if case.startswith("warmup_cosine") else case
