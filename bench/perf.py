"""`bench perf`: what lrbench's runner costs, against the loop a user would write by hand.

For each framework, in a process of its own, LeNet trains on MNIST (60000 images,
batch 128, SGD momentum 0.9) three ways, each for one warm-up epoch and then
``epochs`` timed ones, device-synchronised:

- runner:     ``bench.runner.train`` through the framework's backend, exactly as a study runs;
- hand:       a minimal idiomatic loop in that framework over in-memory arrays
              (Keras: ``model.fit`` with ``jit_compile=True``);
- dataloader: torch only, the seed experiments' style: a ``DataLoader`` over a
              ``TensorDataset`` with a per-batch ``.item()``.

All three run in the same process with the thread count the backend chose, so the
ratios compare code, not machines. The median epoch is reported.
"""

from __future__ import annotations

import multiprocessing as mp
import platform
import statistics
import time

from backends import FRAMEWORKS

from .data import load_dataset
from .runner import train
from .spec import RunSpec, optimizer_params

BATCH, LR, MOMENTUM = 128, 0.01, 0.9


def _timed_epochs(epochs: int, one_epoch, synchronize=lambda: None) -> list[float]:
    seconds = []
    for _ in range(epochs):
        synchronize()
        start = time.perf_counter()
        one_epoch()
        synchronize()
        seconds.append(time.perf_counter() - start)
    return seconds


def _torch_model(device):
    import torch
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    ).to(torch.device(device))


def _torch_sync(device):
    import torch

    return torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)


def torch_hand(x, y, epochs: int, device: str) -> list[float]:
    import torch
    import torch.nn.functional as F

    model = _torch_model(device)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    X, Y = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)

    def epoch():
        for idx in torch.randperm(len(X), device=device).split(BATCH):
            loss = F.cross_entropy(model(X[idx]), Y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()

    return _timed_epochs(epochs, epoch, _torch_sync(device))


def torch_dataloader(x, y, epochs: int, device: str) -> list[float]:
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    model = _torch_model(device)
    criterion = torch.nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    loader = DataLoader(TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=BATCH, shuffle=True)

    def epoch():
        running_loss, correct = 0.0, 0
        for inputs, labels in loader:
            inputs, labels = inputs.to(device), labels.to(device)
            outputs = model(inputs)
            loss = criterion(outputs, labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            running_loss += loss.item()
            correct += (outputs.argmax(1) == labels).sum().item()

    return _timed_epochs(epochs, epoch, _torch_sync(device))


def keras_hand(x, y, epochs: int, device: str) -> list[float]:
    import keras

    layers = keras.layers
    model = keras.Sequential([
        keras.Input((28, 28, 1)), layers.Conv2D(6, 5, padding="same", activation="relu"), layers.MaxPooling2D(),
        layers.Conv2D(16, 5, activation="relu"), layers.MaxPooling2D(), layers.Flatten(),
        layers.Dense(120, activation="relu"), layers.Dense(84, activation="relu"), layers.Dense(10),
    ])
    model.compile(optimizer=keras.optimizers.SGD(LR, momentum=MOMENTUM), jit_compile=True,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))

    class EpochTimes(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):  # fit has waited for the epoch's last step here
            self.seconds.append(time.perf_counter() - self.start)

    times = EpochTimes()
    model.fit(x.transpose(0, 2, 3, 1), y, batch_size=BATCH, epochs=epochs, shuffle=True, verbose=0, callbacks=[times])
    return times.seconds


def paddle_hand(x, y, epochs: int, device: str) -> list[float]:
    import paddle
    import paddle.nn.functional as F
    from paddle import nn

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

    sync = paddle.device.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    return _timed_epochs(epochs, epoch, sync)


HAND_LOOPS = {"torch": torch_hand, "keras": keras_hand, "paddle": paddle_hand}


def measure(framework: str, device: str, epochs: int, data_dir, threads: int | None) -> list[dict]:
    """Time the ways for one framework; runs in a process of its own."""
    spec = RunSpec(study="perf", framework=framework, model="lenet", dataset="mnist",
                   optimizer=optimizer_params({"name": "sgd", "momentum": MOMENTUM}), schedule={"name": "constant"},
                   lr=LR, batch_size=BATCH, epochs=1 + epochs, seed=0, device=device)
    outcome = train(spec, data_dir, threads)
    m = outcome.manifest
    if m["status"] != "done":
        raise RuntimeError(f"{framework}: the runner's run {m['status']}: {m['error']}")
    device_used, version = m["device"], m["framework_version"]
    raw = "cuda" if device_used.startswith("cuda") else "cpu"
    ways = {"runner": [r["value"] for r in outcome.rows if r["metric"] == "epoch_seconds"]}
    data = load_dataset("mnist", data_dir)
    ways["hand"] = HAND_LOOPS[FRAMEWORKS[framework].adapter](data.train_x, data.train_y, 1 + epochs, raw)
    if framework == "torch":
        ways["dataloader"] = torch_dataloader(data.train_x, data.train_y, 1 + epochs, raw)
    return [{"framework": framework, "framework_version": version, "device": device_used, "threads": m["threads"],
             "way": way, "epochs_timed": epochs, "median_epoch_seconds": round(statistics.median(s[1:]), 4),
             "first_epoch_seconds": round(s[0], 4), "python": m["python"], "platform": platform.platform()}
            for way, s in ways.items()]


def run_perf(frameworks: list[str], device: str, epochs: int, data_dir=None, threads: int | None = None) -> list[dict]:
    rows = []
    ctx = mp.get_context("spawn")
    for framework in frameworks:  # one after the other: each has the machine to itself
        pool = ctx.Pool(1)
        rows += pool.apply(measure, (framework, device, epochs, data_dir, threads))
        pool.close()  # let the process exit by itself: Paddle reports a terminate as a crash
        pool.join()
    by = {(r["framework"], r["way"]): r["median_epoch_seconds"] for r in rows}
    for r in rows:
        r["runner_over_hand"] = round(by[(r["framework"], "runner")] / by[(r["framework"], "hand")], 3)
        r["over_runner"] = round(r["median_epoch_seconds"] / by[(r["framework"], "runner")], 3)
    return rows
