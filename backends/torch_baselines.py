"""`bench perf`'s hand-written torch loops: LeNet as users train it, sharing nothing with the backend.

A leaf module: it imports torch and the task's constants (bench/timing.py), nothing of lrbench's
runner or of the adapter, so what it times is the framework alone.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from bench.timing import BATCH, LR, MOMENTUM, timed_epochs


def _plain_lenet(device, channels_last: bool):
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )
    return model.to(device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def _sync(device):
    return torch.cuda.synchronize if device == "cuda" else (lambda: None)


def hand_loop(x, y, epochs: int, device: str, channels_last: bool = True) -> list[float]:
    """LeNet epochs as a user writes them: tensors on the device, a randperm, the usual four lines.

    Channels-last by default, the layout the backend uses, so runner / hand is the
    harness's own cost; ``channels_last=False`` is the loop as most users write it.
    """
    model = _plain_lenet(device, channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    X, Y = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
    if channels_last:
        X = X.contiguous(memory_format=torch.channels_last)

    def epoch():
        for idx in torch.randperm(len(X), device=device).split(BATCH):
            loss = F.cross_entropy(model(X[idx]), Y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()

    return timed_epochs(epochs, epoch, _sync(device))


def dataloader_loop(x, y, epochs: int, device: str) -> list[float]:
    """The seed experiments' style: a DataLoader over a TensorDataset, ``.item()`` every batch."""
    from torch.utils.data import DataLoader, TensorDataset

    model = _plain_lenet(device, channels_last=False)
    criterion = nn.CrossEntropyLoss()
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

    return timed_epochs(epochs, epoch, _sync(device))


BASELINES = {
    "hand": hand_loop,
    "hand-contiguous": partial(hand_loop, channels_last=False),
    "dataloader": dataloader_loop,
}
