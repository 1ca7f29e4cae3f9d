"""Canonical weights (bench/init.py: PyTorch's layout) to and from a framework's own layout.

A backend names its layout; the numpy that converts is written once, here, so a new
framework states how it stores kernels instead of copying the conversions:
- ``conv``: convolution kernels (out, in, kh, kw) "OIHW", or (kh, kw, in, out) "HWIO";
- ``dense``: dense kernels (out, in) "out_in", or (in, out) "in_out";
- ``flatten``: the order in which the first dense layer after a convolution reads its
  inputs, "CHW" (channels-first models) or "HWC" (channels-last models).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .models import Architecture


@dataclass(frozen=True)
class Layout:
    conv: str = "OIHW"
    dense: str = "out_in"
    flatten: str = "CHW"


CANONICAL = Layout()
CHANNELS_LAST = Layout("HWIO", "in_out", "HWC")  # Keras (TensorFlow, JAX, torch engines alike)
DENSE_IN_OUT = Layout(dense="in_out")  # Paddle


def _first_dense_rows(arch: Architecture) -> np.ndarray:
    """Row permutation of the first dense kernel (as (in, out)): canonical (C, H, W) inputs -> (H, W, C)."""
    c, h, w = arch.flatten
    return np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)


def _first_dense(arch: Architecture) -> str:
    """The dense layer that reads the flattened convolutions ("" when there are none)."""
    if not arch.flatten:
        return ""
    return next(f"{name}.weight" for name, shape in arch.layers.items() if len(shape) == 2)


def to_layout(weights: dict[str, np.ndarray], arch: Architecture, layout: Layout) -> dict[str, np.ndarray]:
    """Canonical weights in ``layout`` (biases are the same in every layout)."""
    first = _first_dense(arch)
    out = {}
    for name, w in weights.items():
        if w.ndim == 4 and layout.conv == "HWIO":
            w = w.transpose(2, 3, 1, 0)
        elif w.ndim == 2:
            w = w.T  # (in, out): the flatten order is a permutation of its rows
            if name == first and layout.flatten == "HWC":
                w = w[_first_dense_rows(arch)]
            if layout.dense == "out_in":
                w = w.T
        out[name] = np.ascontiguousarray(w)
    return out


def from_layout(weights: dict[str, np.ndarray], arch: Architecture, layout: Layout) -> dict[str, np.ndarray]:
    """The inverse of ``to_layout``: a framework's weights in the canonical layout."""
    first = _first_dense(arch)
    out = {}
    for name, w in weights.items():
        if w.ndim == 4 and layout.conv == "HWIO":
            w = w.transpose(3, 2, 0, 1)
        elif w.ndim == 2:
            if layout.dense == "out_in":
                w = w.T  # to (in, out)
            if name == first and layout.flatten == "HWC":
                w = w[np.argsort(_first_dense_rows(arch))]
            w = w.T
        out[name] = np.ascontiguousarray(w)
    return out
