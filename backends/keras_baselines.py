"""`bench perf`'s hand-written Keras loop: LeNet as users train it, sharing nothing with the backend.

A leaf module: it imports Keras and the task's constants (bench/timing.py), nothing of lrbench's
runner or of the adapter.
"""

from __future__ import annotations

import time

import keras
from keras import layers

from bench.timing import BATCH, LR, MOMENTUM


def hand_loop(x, y, epochs: int, device: str) -> list[float]:
    """LeNet epochs as a Keras user writes them: Sequential, compile(jit_compile=True), fit."""
    keras.config.set_floatx("float32")  # a user's default, whatever ran before in this process
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


BASELINES = {"hand": hand_loop}
