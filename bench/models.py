"""The models lrbench trains, described once for every framework: layer shapes in the canonical
layout (PyTorch's: convolution kernels (out, in, kh, kw), dense kernels (out, in), the flatten before
the first dense layer in (C, H, W) order) and the input they take. Each adapter builds its own
network from an ``Architecture`` and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

MODELS = ("lenet", "mlp")


@dataclass(frozen=True)
class Architecture:
    """Layer name -> canonical weight shape, in forward order; the (C, H, W) input it takes; LeNet's
    first padding and the (C, H, W) shape its first dense layer flattens (empty without convolutions)."""

    model: str
    layers: dict[str, tuple[int, ...]]
    input_shape: tuple[int, int, int]
    conv1_padding: int = 0
    flatten: tuple[int, ...] = ()


def architecture(model: str, input_shape: tuple[int, int, int], classes: int) -> Architecture:
    c, h, w = input_shape
    if model == "lenet":
        # 28x28 inputs are padded by 2 so both MNIST and CIFAR reach 16x5x5 before fc1.
        padding = 2 if (h, w) == (28, 28) else 0
        rows, cols = (((n + 2 * padding - 4) // 2 - 4) // 2 for n in (h, w))
        layers = {
            "conv1": (6, c, 5, 5),
            "conv2": (16, 6, 5, 5),
            "fc1": (120, 16 * rows * cols),
            "fc2": (84, 120),
            "fc3": (classes, 84),
        }
        return Architecture(model, layers, (c, h, w), padding, (16, rows, cols))
    if model == "mlp":
        layers = {"fc1": (25, c * h * w), "fc2": (12, 25), "fc3": (classes, 12)}
        return Architecture(model, layers, (c, h, w))
    raise ValueError(f"unknown model {model!r}")
