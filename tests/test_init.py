"""Initial weights: PyTorch's default formula, drawn in numpy, identical for a seed."""

import numpy as np

from bench.init import initial_weights
from bench.models import architecture


def test_lenet_shapes_for_mnist_and_cifar():
    mnist = architecture("lenet", (1, 28, 28), 10)
    cifar = architecture("lenet", (3, 32, 32), 10)
    assert mnist.conv1_padding == 2 and cifar.conv1_padding == 0
    assert mnist.layers["fc1"] == cifar.layers["fc1"] == (120, 400)
    assert cifar.layers["conv1"] == (6, 3, 5, 5)


def test_mlp_shapes_from_the_data():
    assert architecture("mlp", (3, 64, 64), 6).layers == {"fc1": (25, 12288), "fc2": (12, 25), "fc3": (6, 12)}


def test_uniform_bounds_and_determinism():
    arch = architecture("lenet", (1, 28, 28), 10)
    a, b, c = initial_weights(arch, 0), initial_weights(arch, 0), initial_weights(arch, 1)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["fc1.weight"], c["fc1.weight"])
    bound = 1 / np.sqrt(400)
    w = a["fc1.weight"]
    assert w.dtype == np.float32 and np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert abs(w.std() - bound / np.sqrt(3)) < 0.01 * bound  # U(-b, b) has std b/sqrt(3)
    assert np.abs(a["conv1.bias"]).max() <= 1 / np.sqrt(25)


def test_glorot_uniform_weights_and_zero_biases():
    arch = architecture("mlp", (3, 64, 64), 6)
    w = initial_weights(arch, 0, "glorot")
    bound = np.sqrt(6 / (12288 + 25))
    assert np.abs(w["fc1.weight"]).max() <= bound and np.abs(w["fc1.weight"]).max() > 0.99 * bound
    assert abs(w["fc1.weight"].std() - bound / np.sqrt(3)) < 0.01 * bound
    assert all(not w[f"fc{k}.bias"].any() for k in (1, 2, 3))
    conv = initial_weights(architecture("lenet", (1, 28, 28), 10), 0, "glorot")["conv1.weight"]
    assert np.abs(conv).max() <= np.sqrt(6 / (25 + 150))  # fans count the receptive field: 1*25 in, 6*25 out
    assert not np.array_equal(w["fc1.weight"], initial_weights(arch, 0)["fc1.weight"])
