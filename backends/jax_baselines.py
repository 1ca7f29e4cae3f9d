"""`bench perf`'s hand-written Flax/Optax loop: LeNet as JAX users train it, sharing nothing with the backend.

A leaf module: it imports JAX, Flax, Optax and the task's constants (bench/timing.py), nothing of
lrbench's runner or of the adapter.
"""

from __future__ import annotations

from functools import partial

import flax.linen as nn
import jax
import numpy as np
import optax

from bench.timing import BATCH, LR, MOMENTUM, timed_epochs


class LeNet(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.max_pool(nn.relu(nn.Conv(6, (5, 5), padding="SAME")(x)), (2, 2), strides=(2, 2))
        x = nn.max_pool(nn.relu(nn.Conv(16, (5, 5), padding="VALID")(x)), (2, 2), strides=(2, 2))
        x = x.reshape(x.shape[0], -1)
        x = nn.relu(nn.Dense(84)(nn.relu(nn.Dense(120)(x))))
        return nn.Dense(10)(x)


def hand_loop(x, y, epochs: int, device: str) -> list[float]:
    """LeNet epochs as a JAX user writes them: the data on the device, a permutation, one jitted step that
    takes the batch's indices."""
    dev = jax.devices("gpu" if device == "cuda" else "cpu")[0]
    X, Y = jax.device_put(x.transpose(0, 2, 3, 1), dev), jax.device_put(y.astype(np.int32), dev)
    model, tx = LeNet(), optax.sgd(LR, momentum=MOMENTUM)
    params = jax.device_put(model.init(jax.random.key(0), X[:1]), dev)
    state = tx.init(params)
    rng = np.random.default_rng(0)

    @partial(jax.jit, donate_argnums=(0, 1))
    def step(params, state, X, Y, idx):
        def loss_fn(params):
            return optax.softmax_cross_entropy_with_integer_labels(model.apply(params, X[idx]), Y[idx]).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    def epoch():
        nonlocal params, state
        order = rng.permutation(len(x)).astype(np.int32)
        for start in range(0, len(order), BATCH):
            params, state, _ = step(params, state, X, Y, order[start:start + BATCH])

    return timed_epochs(epochs, epoch, lambda: jax.block_until_ready(params))


BASELINES = {"hand": hand_loop}
