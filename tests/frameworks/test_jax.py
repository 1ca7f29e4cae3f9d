"""JAX's own: Optax's optimizers as pinned update as torch.optim does, and XLA's CPU pool gets the run's threads."""

import os
import subprocess
import sys

import numpy as np
import pytest

from bench.spec import optimizer_params
from tests.frameworks.test_contract import OPTIMIZER_CASES

pytestmark = pytest.mark.env_jax  # the tox envs that run this file (see tests/conftest.py)

# Where Optax's arithmetic is not torch's, by how much (relative, float64, the cases below): Adagrad adds eps
# inside the square root (backends/jax_backend.py); everything else is torch's update to rounding.
NOT_TORCH = {"adagrad": 1e-6}  # measured: 7e-8 at eps 1e-9


@pytest.mark.parametrize("case", OPTIMIZER_CASES, ids=[str(sorted(c.items())) for c in OPTIMIZER_CASES])
def test_pinned_optax_updates_as_torch_optim(case):
    """Five steps from the same parameters and gradients, float64, a constant lr: torch.optim and the adapter's
    Optax optimizer end on the same parameters. A pin dropped (Optax's Adagrad accumulator 0.1, RMSprop's eps in
    the square root) moves them by far more than these tolerances."""
    import jax.numpy as jnp
    import optax
    import torch

    from backends.jax_backend import OPTIMIZER_BUILDERS
    from backends.torch_backend import OPTIMIZER_BUILDERS as TORCH

    p = optimizer_params(case)
    rng = np.random.default_rng(0)
    start, grads, lr = rng.normal(size=20), rng.normal(size=(5, 20)), 0.01
    param = torch.tensor(start, requires_grad=True)
    reference = TORCH[p["name"]]([param], {**p, "momentum_form": "torch"}, lr)  # at a constant lr the forms agree
    params = {"w": jnp.asarray(start)}
    tx = OPTIMIZER_BUILDERS[p["name"]](params, p, lr)
    state = tx.init(params)
    for g in grads:
        param.grad = torch.tensor(g)
        reference.step()
        updates, state = tx.update({"w": jnp.asarray(g)}, state, params)
        params = optax.apply_updates(params, updates)
    moved = param.detach().numpy() - start
    np.testing.assert_allclose(np.asarray(params["w"]) - start, moved, rtol=NOT_TORCH.get(p["name"], 1e-10), atol=0)


def _xla_threads(threads: int) -> tuple[int, int]:
    """In a fresh process: the threads the adapter reports, and the threads of XLA's CPU (Eigen) pool."""
    code = ("import os; from backends import load_backend; b = load_backend('jax'); _, used = b.setup('cpu', "
            f"{threads}, 0); names = [open(f'/proc/self/task/{{t}}/comm').read().strip() "
            "for t in os.listdir('/proc/self/task')]; print(used, names.count('tf_XLAEigen'), "
            "min(len(os.sched_getaffinity(int(t))) for t in os.listdir('/proc/self/task')))")
    used, pool, cores = map(int, subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                                check=True).stdout.split())
    # every core given back, to every thread, once the pool has started: a pool thread left on the first
    # cores would share them with every other run's (two runs at --jobs 2 on one core)
    assert cores == len(os.sched_getaffinity(0))
    return used, pool


def test_xla_cpu_pool_has_the_runs_threads():
    """XLA fixes its pool from the cores the process may use when it starts: one thread asked, one in the pool."""
    assert _xla_threads(1) == (1, 1)
    more = min(2, len(os.sched_getaffinity(0)))
    assert _xla_threads(more) == (more, more)


def test_vmapped_lenet_step_updates_each_member_as_its_own_step(real_data_dir):
    """The vmapped fused step (LeNet's on GPUs) against the members stepped one by one (LeNet's on a CPU),
    from the same weights, at four lrs: 20 SGD steps end on the same parameters to float32 rounding."""
    import jax

    from backends.jax_backend import FusedBackend, make_step, one_by_one
    from bench.data import load_dataset
    from bench.init import initial_weights
    from bench.models import architecture

    data = load_dataset("mnist", real_data_dir, train_size=1280, val_size=10)
    arch = architecture("lenet", data.input_shape, data.classes)
    backend = FusedBackend()
    backend.setup("cpu", 1, 0)
    backend.set_data(data.train_x, data.train_y, data.val_x, data.val_y)
    sgd = optimizer_params({"name": "sgd", "momentum": 0.5})
    backend.build(arch, initial_weights(arch, 0), sgd, [0.1, 0.01, 0.001, 0.0001])
    vmapped = jax.jit(jax.vmap(make_step(backend.model, backend.tx), in_axes=(0, 0, None, None, None)))
    stepped = one_by_one(make_step(backend.model, backend.tx), 4)
    a, b = (backend.params, backend.state), jax.tree.map(lambda x: x.copy(), (backend.params, backend.state))
    for start in range(0, 1280, 64):
        idx = np.arange(start, start + 64, dtype=np.int32)
        a, b = vmapped(*a, backend.train_x, backend.train_y, idx)[:2], stepped(*b, backend.train_x, backend.train_y, idx)[:2]
    moved = [float(np.abs(np.asarray(x) - np.asarray(y)).max()) for x, y in zip(jax.tree.leaves(a[0]), jax.tree.leaves(b[0]))]
    assert max(moved) < 1e-5
    first = jax.tree.leaves(a[0])[0]
    assert float(np.abs(np.asarray(first[0]) - np.asarray(first[3])).max()) > 1e-3  # the members' lrs really differ


def test_the_step_compiles_once_per_batch_shape(real_data_dir):
    """Parameters and optimizer state committed to the device at build, as the step's outputs are: an epoch
    whose batches are all one size compiles the step once. Optax's state left uncommitted compiled it again
    on the second call."""
    from backends.jax_backend import Backend
    from bench.data import load_dataset
    from bench.init import initial_weights
    from bench.models import architecture

    data = load_dataset("mnist", real_data_dir, train_size=256, val_size=10)
    arch = architecture("mlp", data.input_shape, data.classes)
    backend = Backend()
    backend.setup("cpu", 1, 0)
    backend.set_data(data.train_x, data.train_y, data.val_x, data.val_y)
    backend.build(arch, initial_weights(arch, 0), optimizer_params({"name": "sgd", "momentum": 0.5}), 0.1)
    backend.train_steps(np.arange(256), 64, None)
    assert backend._step._cache_size() == 1
