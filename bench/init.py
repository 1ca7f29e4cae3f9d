"""Initial weights drawn once in numpy from the seed, so every framework starts identically.

Canonical layout is PyTorch's: convolution kernels (out, in, kh, kw), dense kernels
(out, in), and the flatten before the first dense layer in (C, H, W) order. Each
backend converts to its own layout when it loads them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Architecture:
    """Layer name -> canonical weight shape, in forward order, plus LeNet's first padding and the
    (C, H, W) shape its first dense layer flattens (empty for a model without convolutions)."""

    model: str
    layers: dict[str, tuple[int, ...]]
    conv1_padding: int = 0
    flatten: tuple[int, ...] = ()


def architecture(model: str, input_shape: tuple[int, int, int], classes: int) -> Architecture:
    c, h, w = input_shape
    if model == "lenet":
        # 28x28 inputs are padded by 2 so both MNIST and CIFAR reach 16x5x5 before fc1.
        padding = 2 if (h, w) == (28, 28) else 0
        side = ((h + 2 * padding - 4) // 2 - 4) // 2
        layers = {
            "conv1": (6, c, 5, 5),
            "conv2": (16, 6, 5, 5),
            "fc1": (120, 16 * side * side),
            "fc2": (84, 120),
            "fc3": (classes, 84),
        }
        return Architecture(model, layers, padding, (16, side, side))
    if model == "mlp":
        layers = {"fc1": (25, c * h * w), "fc2": (12, 25), "fc3": (classes, 12)}
        return Architecture(model, layers)
    raise ValueError(f"unknown model {model!r}")


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
