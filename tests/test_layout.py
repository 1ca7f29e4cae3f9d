"""Layout conversions (bench/layout.py): exact round trips, and the same function in every layout."""

import numpy as np
import pytest

from bench.init import initial_weights
from bench.layout import CANONICAL, CHANNELS_LAST, DENSE_IN_OUT, from_layout, to_layout
from bench.models import architecture

LAYOUTS = [CANONICAL, CHANNELS_LAST, DENSE_IN_OUT]
ARCHS = {"lenet-mnist": ("lenet", (1, 28, 28)), "lenet-cifar": ("lenet", (3, 32, 32)), "mlp": ("mlp", (3, 8, 8))}


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda x: f"{x.conv}-{x.dense}-{x.flatten}")
@pytest.mark.parametrize("name", ARCHS)
def test_round_trip_is_exact(name, layout):
    arch = architecture(*ARCHS[name], 10)
    weights = initial_weights(arch, seed=3)
    back = from_layout(to_layout(weights, arch, layout), arch, layout)
    assert list(back) == list(weights)
    for k in weights:
        assert back[k].flags.c_contiguous and np.array_equal(back[k], weights[k]), k


def test_channels_last_first_dense_reads_hwc_flatten():
    """fc1 on a (C, H, W) activation flattened in the framework's order gives the canonical product."""
    arch = architecture("lenet", (1, 28, 28), 10)
    assert arch.flatten == (16, 5, 5)
    weights = initial_weights(arch, seed=0)
    activation = np.random.default_rng(1).normal(size=arch.flatten).astype(np.float32)
    canonical = weights["fc1.weight"] @ activation.reshape(-1)
    keras_kernel = to_layout(weights, arch, CHANNELS_LAST)["fc1.weight"]  # (in, out), rows in (H, W, C) order
    assert keras_kernel.shape == (400, 120)
    np.testing.assert_allclose(activation.transpose(1, 2, 0).reshape(-1) @ keras_kernel, canonical, rtol=1e-5, atol=1e-5)
    # Only the first dense layer is permuted; a channels-first framework reads the canonical order.
    np.testing.assert_array_equal(to_layout(weights, arch, CHANNELS_LAST)["fc2.weight"], weights["fc2.weight"].T)
    np.testing.assert_array_equal(to_layout(weights, arch, DENSE_IN_OUT)["fc1.weight"], weights["fc1.weight"].T)


def test_hwio_kernel_is_the_canonical_kernel_transposed():
    arch = architecture("lenet", (3, 32, 32), 10)
    w = initial_weights(arch, seed=0)["conv1.weight"]  # (6, 3, 5, 5)
    hwio = to_layout({"conv1.weight": w}, arch, CHANNELS_LAST)["conv1.weight"]
    assert hwio.shape == (5, 5, 3, 6)
    assert hwio[1, 2, 0, 4] == w[4, 0, 1, 2]
