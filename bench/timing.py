"""The task `bench perf` times, and how it times a loop: a leaf module, so the hand-written
baselines (backends/*_baselines.py) can share it without importing lrbench's runner."""

from __future__ import annotations

import time

BATCH, LR, MOMENTUM = 128, 0.01, 0.9  # LeNet on MNIST, SGD with momentum, constant lr


def timed_epochs(epochs: int, one_epoch, synchronize=lambda: None) -> list[float]:
    """Seconds of each call of ``one_epoch``, the device synchronised before and after."""
    seconds = []
    for _ in range(epochs):
        synchronize()
        start = time.perf_counter()
        one_epoch()
        synchronize()
        seconds.append(time.perf_counter() - start)
    return seconds
