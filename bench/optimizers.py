"""The optimizers a study may name: their parameters, and the update every framework's must reproduce.

``OPTIMIZERS`` declares each one's parameters (type, default, range; every hyperparameter
explicit, so that no framework default decides anything silently). ``reference_update``
is its math in numpy float64, PyTorch's formulas with weight decay coupled (wd * p added
to the gradient), the single truth of the contract test (tests/frameworks/test_contract.py),
as bench/schedules.py's formulas are for the schedules. Where a framework's formula
departs and cannot be pinned (where it adds epsilon), its adapter names the departure in
``OPTIMIZER_DEPARTURES`` from ``DEPARTURES`` here, and the test applies that variant.
"""

from __future__ import annotations

import numpy as np

from .params import Declaration, choice, flag, number

_DECAY = {"weight_decay": number(0.0, ge=0)}
_UNIT = {"ge": 0, "lt": 1}  # momentum, betas, rho: in [0, 1)
OPTIMIZERS: dict[str, Declaration] = {
    # momentum_form "torch": v = m*v + g, p -= lr*v (PyTorch, Paddle); "keras": v = m*v - lr*g, p += v.
    "sgd": Declaration(
        {"momentum": number(0.0, **_UNIT), "nesterov": flag(False), **_DECAY,
         "momentum_form": choice("torch", "torch", "keras")},
        ((lambda p: not p["nesterov"] or p["momentum"] > 0, "nesterov needs a momentum > 0"),),
    ),
    "adagrad": Declaration({"eps": number(1e-10, gt=0), "initial_accumulator_value": number(0.0, ge=0), **_DECAY}),
    "adam": Declaration({"beta1": number(0.9, **_UNIT), "beta2": number(0.999, **_UNIT), "eps": number(1e-8, gt=0), **_DECAY}),
    "rmsprop": Declaration({"rho": number(0.99, **_UNIT), "eps": number(1e-8, gt=0), "momentum": number(0.0, **_UNIT),
                            "centered": flag(False), **_DECAY}),
}

# The ways a framework's formula departs from PyTorch's and cannot be pinned (docs/frameworks.md says where).
DEPARTURES = {
    "eps_in_sqrt": "epsilon added inside the square root (PyTorch: outside)",
    "eps_before_bias_correction": "Adam's epsilon added to sqrt(v) before the bias correction (PyTorch: after), an "
                                  "effective epsilon of eps * sqrt(1 - beta2^t)",
    "lr_in_momentum": "lr inside the momentum buffer (PyTorch: outside): the same update while the lr holds",
}


def reference_update(p: dict, state: dict, w: np.ndarray, g: np.ndarray, lr: float, departures=()) -> np.ndarray:
    """The parameter ``w`` after one step of optimizer ``p`` (its declaration filled in) on gradient ``g`` at ``lr``;
    ``state`` is this parameter's, empty before its first step, and is updated."""
    g = g + p["weight_decay"] * w
    t = state["t"] = state.get("t", 0) + 1
    return _UPDATES[p["name"]](p, state, w, g, lr, t, set(departures))


def _sgd(p, s, w, g, lr, t, departures):
    m = p["momentum"]
    if not m:
        return w - lr * g
    if p["momentum_form"] == "keras":
        v = s["v"] = m * s.get("v", 0.0) - lr * g
        return w + (m * v - lr * g if p["nesterov"] else v)
    v = s["v"] = m * s["v"] + g if "v" in s else g  # PyTorch's buffer starts at the first gradient
    return w - lr * (g + m * v if p["nesterov"] else v)


def _adagrad(p, s, w, g, lr, t, departures):
    total = s["sum"] = s.get("sum", p["initial_accumulator_value"]) + g * g
    denominator = np.sqrt(total + p["eps"]) if "eps_in_sqrt" in departures else np.sqrt(total) + p["eps"]
    return w - lr * g / denominator


def _adam(p, s, w, g, lr, t, departures):
    b1, b2, eps = p["beta1"], p["beta2"], p["eps"]
    m = s["m"] = b1 * s.get("m", 0.0) + (1 - b1) * g
    v = s["v"] = b2 * s.get("v", 0.0) + (1 - b2) * g * g
    if "eps_before_bias_correction" in departures:
        return w - lr * np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps)
    return w - lr / (1 - b1**t) * m / (np.sqrt(v) / np.sqrt(1 - b2**t) + eps)


def _rmsprop(p, s, w, g, lr, t, departures):
    rho, eps = p["rho"], p["eps"]
    square = s["square"] = rho * s.get("square", 0.0) + (1 - rho) * g * g
    if p["centered"]:
        mean = s["mean"] = rho * s.get("mean", 0.0) + (1 - rho) * g
        square = square - mean * mean
    denominator = np.sqrt(square + eps) if "eps_in_sqrt" in departures else np.sqrt(square) + eps
    if not p["momentum"]:
        return w - lr * g / denominator
    if "lr_in_momentum" in departures:
        buf = s["buf"] = p["momentum"] * s.get("buf", 0.0) + lr * g / denominator
        return w - buf
    buf = s["buf"] = p["momentum"] * s.get("buf", 0.0) + g / denominator
    return w - lr * buf


_UPDATES = {"sgd": _sgd, "adagrad": _adagrad, "adam": _adam, "rmsprop": _rmsprop}
