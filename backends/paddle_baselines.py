"""`bench perf`'s hand-written Paddle loop: LeNet as users train it, sharing nothing with the backend.

A leaf module: it imports Paddle and the task's constants (bench/timing.py), nothing of lrbench's
runner or of the adapter.
"""

from __future__ import annotations

import paddle
import paddle.nn.functional as F
from paddle import nn

from bench.timing import BATCH, LR, MOMENTUM, timed_epochs


def hand_loop(x, y, epochs: int, device: str) -> list[float]:
    """LeNet epochs as a Paddle user writes them: dygraph Sequential, Momentum, a randperm."""
    paddle.set_default_dtype("float32")  # a user's default, whatever ran before in this process
    model = nn.Sequential(
        nn.Conv2D(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2D(2), nn.Conv2D(6, 16, 5), nn.ReLU(), nn.MaxPool2D(2),
        nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )
    opt = paddle.optimizer.Momentum(learning_rate=LR, momentum=MOMENTUM, parameters=model.parameters())
    X, Y = paddle.to_tensor(x), paddle.to_tensor(y)

    def epoch():
        perm = paddle.randperm(len(x))
        for i in range(0, len(x), BATCH):
            idx = perm[i:i + BATCH]
            loss = F.cross_entropy(model(X[idx]), Y[idx])
            loss.backward()
            opt.step()
            opt.clear_grad()

    return timed_epochs(epochs, epoch, paddle.device.cuda.synchronize if device == "cuda" else (lambda: None))


BASELINES = {"hand": hand_loop}
