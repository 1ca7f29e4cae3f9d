"""The lr torch applies in every epoch equals the reference schedule to 1e-9."""

import numpy as np
import pytest

from backends.torch_backend import Backend
from bench.init import architecture, initial_weights
from bench.schedules import Schedule
from bench.spec import optimizer_params
from tests.cases import BASE_LR, EPOCHS, SCHEDULE_CASES, VAL_LOSSES, schedule_name


@pytest.mark.parametrize("case", sorted(SCHEDULE_CASES))
def test_applied_lr_matches_reference(case):
    name, params = schedule_name(case), SCHEDULE_CASES[case]
    reference = Schedule(name, BASE_LR, params)
    backend = Backend()
    backend.setup("cpu", 1, 0)
    arch = architecture("mlp", (1, 8, 8), 10)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 10, 16)
    backend.set_data(x, y, x, y)
    backend.build(arch, initial_weights(arch, 0), optimizer_params({"name": "sgd"}),
                  {"name": name, **reference.params}, BASE_LR)
    applied, expected = [], []
    for epoch in range(EPOCHS):
        applied.append(backend.applied_lr())
        expected.append(reference.lr(epoch))
        backend.train_epoch(rng.permutation(16), 8)  # the optimizer really steps at that lr
        backend.end_epoch(VAL_LOSSES[epoch])
        reference.observe(VAL_LOSSES[epoch])
    np.testing.assert_allclose(applied, expected, rtol=0, atol=1e-9)
    assert len(set(np.round(expected, 12))) > 1 or name == "constant"
