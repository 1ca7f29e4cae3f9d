"""Initial weights drawn once in numpy from the seed, so every framework starts identically.

They are in the canonical layout of bench/models.py; each backend converts to its own
layout when it loads them (bench/layout.py).
"""

from __future__ import annotations

import math

import numpy as np

from .models import Architecture


def initial_weights(arch: Architecture, seed: int, init: str = "torch") -> dict[str, np.ndarray]:
    """The model's starting weights, by ``init``:

    - ``torch``: PyTorch's default, kaiming_uniform(a=sqrt(5)) weights and bias, both U(+-1/sqrt(fan_in)).
    - ``glorot``: Glorot/Xavier-uniform weights U(+-sqrt(6 / (fan_in + fan_out))) and zero biases, as
      ``tf.contrib.layers.xavier_initializer`` and ``tf.zeros_initializer`` give them.
    """
    if init not in ("torch", "glorot"):
        raise ValueError(f"unknown init {init!r}")
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in arch.layers.items():
        receptive = int(np.prod(shape[2:]))  # 1 for a dense layer
        fan_in, fan_out = shape[1] * receptive, shape[0] * receptive
        if init == "torch":
            bound = 1.0 / math.sqrt(fan_in)
            weights[f"{name}.weight"] = rng.uniform(-bound, bound, size=shape).astype(np.float32)
            weights[f"{name}.bias"] = rng.uniform(-bound, bound, size=shape[0]).astype(np.float32)
        else:
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            weights[f"{name}.weight"] = rng.uniform(-bound, bound, size=shape).astype(np.float32)
            weights[f"{name}.bias"] = np.zeros(shape[0], np.float32)
    return weights
