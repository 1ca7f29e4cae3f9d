"""Keras 3: functional models in channels-last layout, Keras optimizers and schedule objects.

Runs on TensorFlow by default, or on JAX / torch as ``keras-jax`` / ``keras-torch``
(``KERAS_BACKEND`` is set in the run's own process before Keras is imported). The
training step is compiled once per run (TensorFlow: ``tf.function(jit_compile=True)``,
JAX: ``jax.jit``) and gathers each batch from device-resident arrays by index, so a
batch costs no host round trip; losses come to the host once per epoch.

Pinned against Keras's defaults, so the math is that of the other backends:
- SGD momentum in PyTorch's form by default (v = m*v + g; p -= lr*v): Keras's own
  form keeps lr inside the velocity (v = m*v - lr*g; p += v), which is the same at a
  constant lr and departs once a schedule changes lr. ``momentum_form = "keras"``
  runs Keras's own SGD instead.
- Adam epsilon 1e-8 (Keras default 1e-7). Keras adds epsilon to sqrt(v) before bias
  correction, PyTorch after: Keras's effective epsilon is eps * sqrt(1 - beta2^t).
- Adagrad initial accumulator 0 (Keras default 0.1) and RMSprop epsilon 1e-8 (Keras
  1e-7); both add epsilon inside the square root, PyTorch outside.
- Weight decay as PyTorch couples it: wd * p added to the gradient.
- Schedules are Keras schedule objects read at each epoch (per-step ones at each step),
  and their lr is set on the optimizer (bench/lr_control.py); reduce-on-plateau follows
  the reference, because Keras's callback uses an absolute threshold and waits one
  epoch less than PyTorch. The optimizer holds its lr in a float32 variable (float64 in a
  float64 run), and the rows record that value.
"""

from __future__ import annotations

import os

import keras  # KERAS_BACKEND is set before this import (backends.load_adapter)
import numpy as np
from keras import layers, ops

from bench.layout import CHANNELS_LAST, from_layout, to_layout
from bench.schedules import range_factor

from .base import EpochResult, EvalResult, NativeSchedules, resolve_device, weights_dtype

schedules = keras.optimizers.schedules


# ---------------------------------------------------------------- models


def build_model(arch) -> keras.Model:
    """LeNet or the MLP in channels-last layout, its shapes read from the architecture."""
    shapes = arch.layers
    if arch.model == "lenet":
        (c1, c, k1, _), (c2, _, k2, _) = shapes["conv1"], shapes["conv2"]
        _, h, w = arch.input_shape
        inputs = keras.Input((h, w, c))
        x = layers.Conv2D(c1, k1, padding="same" if arch.conv1_padding else "valid", activation="relu", name="conv1")(inputs)
        x = layers.MaxPooling2D(2)(x)
        x = layers.Conv2D(c2, k2, activation="relu", name="conv2")(x)
        x = layers.MaxPooling2D(2)(x)
    else:
        inputs = x = keras.Input((shapes["fc1"][1],))  # fed already flat, see Backend.set_data
    x = layers.Flatten()(x)
    x = layers.Dense(shapes["fc1"][0], activation="relu", name="fc1")(x)
    x = layers.Dense(shapes["fc2"][0], activation="relu", name="fc2")(x)
    outputs = layers.Dense(shapes["fc3"][0], name="fc3")(x)
    return keras.Model(inputs, outputs, name=arch.model)


# ---------------------------------------------------------------- optimizers


class TorchFormSGD(keras.optimizers.SGD):
    """SGD with PyTorch's (and Paddle's) momentum: v = m*v + g; p -= lr * (nesterov ? g + m*v : v)."""

    def update_step(self, gradient, variable, learning_rate):
        if self.momentum == 0:
            return super().update_step(gradient, variable, learning_rate)
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        v = self.momentums[self._get_variable_index(variable)]
        self.assign(v, ops.add(ops.multiply(v, self.momentum), gradient))
        step = ops.add(gradient, ops.multiply(v, self.momentum)) if self.nesterov else v
        self.assign_sub(variable, ops.multiply(step, lr))


# name -> OptimizerBuilder (backends/base.py): one per optimizer the core declares (bench/optimizers.py), but those it refuses.
# A Keras optimizer meets its variables at its first step, so ``params`` goes unused. Weight decay is
# added to the gradients in the training step (coupled, as torch and Paddle apply it).
OPTIMIZER_BUILDERS = {
    "sgd": lambda params, p, lr: {"torch": TorchFormSGD, "keras": keras.optimizers.SGD}[p["momentum_form"]](
        learning_rate=lr, momentum=p["momentum"], nesterov=p["nesterov"]),
    "adagrad": lambda params, p, lr: keras.optimizers.Adagrad(learning_rate=lr, epsilon=p["eps"],
                                                              initial_accumulator_value=p["initial_accumulator_value"]),
    "adam": lambda params, p, lr: keras.optimizers.Adam(learning_rate=lr, beta_1=p["beta1"], beta_2=p["beta2"],
                                                        epsilon=p["eps"]),
    "rmsprop": lambda params, p, lr: keras.optimizers.RMSprop(learning_rate=lr, rho=p["rho"], epsilon=p["eps"],
                                                              momentum=p["momentum"], centered=p["centered"]),
}
# Where Keras's formula departs from the reference (bench/optimizers.py DEPARTURES), as the module docstring says.
OPTIMIZER_DEPARTURES = {"adagrad": ("eps_in_sqrt",), "adam": ("eps_before_bias_correction",),
                        "rmsprop": ("eps_in_sqrt", "lr_in_momentum")}


# ---------------------------------------------------------------- schedules


class Constant(schedules.LearningRateSchedule):
    """A constant as a schedule."""

    def __init__(self, lr: float):
        self.lr = lr

    def __call__(self, count):
        return ops.cast(self.lr, "float64")


def _multistep(p, lr):
    """PiecewiseConstantDecay switches after a boundary: the lr of milestone m starts at epoch m."""
    values = [lr * p["gamma"] ** k for k in range(len(p["milestones"]) + 1)]
    return schedules.PiecewiseConstantDecay([m - 1 for m in p["milestones"]], values)


def _warmup_cosine(p, lr):
    w = p["warmup_epochs"]
    return schedules.CosineDecay(np.float64(p["warmup_start_lr"]), decay_steps=p["t_max"] - w,
                                 alpha=p["eta_min"] / lr, warmup_target=lr, warmup_steps=w)


def _in_float64(builders: dict) -> dict:
    """Keras's schedules compute in their initial lr's dtype: float64, as the reference."""
    def in_float64(build):
        return lambda p, lr: build(p, np.float64(lr))

    return {name: in_float64(build) for name, build in builders.items()}


# The schedules Keras computes itself (backends/base.py NativeSchedules), each a Keras schedule read at the
# epoch (or, per step, the optimizer step) it is asked for; any other runs from the reference (Keras has
# one-cycle, cyclical and reduce-on-plateau only as callbacks of ``fit``).
NATIVE = NativeSchedules(builders=_in_float64({
    "constant": lambda p, lr: Constant(lr),
    "step": lambda p, lr: schedules.ExponentialDecay(lr, decay_steps=p["step_size"], decay_rate=p["gamma"], staircase=True),
    "multistep": _multistep,
    "exponential": lambda p, lr: schedules.ExponentialDecay(lr, decay_steps=1, decay_rate=p["gamma"], staircase=True),
    # alpha is a fraction of the initial lr, not a floor; CosineDecay holds it past decay_steps.
    "cosine": lambda p, lr: schedules.CosineDecay(lr, decay_steps=p["t_max"], alpha=p["eta_min"] / lr),
    "warmup_cosine": _warmup_cosine,
    "cosine_restarts": lambda p, lr: schedules.CosineDecayRestarts(lr, first_decay_steps=p["t_0"], t_mul=float(p["t_mult"]),
                                                                   m_mul=1.0, alpha=p["eta_min"] / lr),
    "polynomial": lambda p, lr: schedules.PolynomialDecay(lr, decay_steps=p["t_max"], end_learning_rate=0.0,
                                                          power=p["power"], cycle=False),
    "cosine_per_step": lambda p, lr: schedules.CosineDecay(lr, decay_steps=p["t_max"], alpha=p["eta_min"] / lr),
    "range_test": lambda p, lr: schedules.ExponentialDecay(np.float64(p["min_lr"]), decay_steps=1,
                                                          decay_rate=range_factor(lr, p["min_lr"], p["steps"])),
}), read=lambda schedule, count: float(ops.convert_to_numpy(schedule(count))), advance=lambda schedule, val_loss: None)


# ---------------------------------------------------------------- training steps, one per Keras backend


def _loss(y, logits):
    return ops.mean(keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))


def _correct(y, logits):
    return ops.sum(ops.cast(ops.cast(ops.argmax(logits, axis=1), y.dtype) == y, "int32"))


def lr_held(optimizer) -> float:
    """The lr the optimizer's variable holds (read from a copy: numpy warns on a TensorFlow variable)."""
    return float(ops.convert_to_numpy(ops.copy(optimizer.learning_rate)))


class _Steps:
    """A Keras backend's compiled training step and forward pass, and how it sets the optimizer's lr."""

    def begin(self):
        """Before an epoch's steps."""

    def end(self):
        """After them."""

    def set_lr(self, lr: float) -> float:
        """Set the lr of the next steps (a plain variable: assigning it retraces nothing); the lr it now holds."""
        self.optimizer.learning_rate = lr
        return lr_held(self.optimizer)

    def compilations(self) -> int | None:
        """The training step's compilations (None: eager)."""
        return None


class _TensorFlowSteps(_Steps):
    def __init__(self, model, optimizer, weight_decay):
        import tensorflow as tf

        variables = model.trainable_variables
        optimizer.build(variables)  # its slots made now: a first trace that made them would be traced again

        @tf.function(jit_compile=True, reduce_retracing=True)
        def train(x_all, y_all, idx):
            x, y = tf.gather(x_all, idx), tf.gather(y_all, idx)
            with tf.GradientTape() as tape:
                logits = model(x, training=True)
                loss = _loss(y, logits)
            grads = tape.gradient(loss, variables)
            if weight_decay:
                grads = [g + weight_decay * v for g, v in zip(grads, variables)]
            optimizer.apply(grads, variables)
            return loss, _correct(y, logits)

        @tf.function(jit_compile=True, reduce_retracing=True)
        def forward(x):
            return model(x, training=False)

        self.train, self.forward, self.optimizer = train, forward, optimizer

    def compilations(self) -> int:
        return self.train.experimental_get_tracing_count()


class _JaxSteps(_Steps):
    """Keras's stateless API under jax.jit: state goes in and out of each step."""

    def __init__(self, model, optimizer, weight_decay):
        import jax

        self.model, self.optimizer, self.state = model, optimizer, None
        optimizer.build(model.trainable_variables)
        self.lr_index = [id(v) for v in optimizer.variables].index(id(optimizer.learning_rate))

        def train(state, x_all, y_all, idx):
            trainable, non_trainable, opt_vars = state
            x, y = x_all[idx], y_all[idx]

            def loss_fn(tv):
                logits, nt = model.stateless_call(tv, non_trainable, x, training=True)
                return _loss(y, logits), (logits, nt)

            (loss, (logits, non_trainable)), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable)
            if weight_decay:
                grads = [g + weight_decay * v for g, v in zip(grads, trainable)]
            trainable, opt_vars = optimizer.stateless_apply(opt_vars, grads, trainable)
            return (trainable, non_trainable, opt_vars), loss, _correct(y, logits)

        self._train = jax.jit(train, donate_argnums=0)
        self._forward = jax.jit(lambda tv, ntv, x: model.stateless_call(tv, ntv, x, training=False)[0])

    def begin(self):
        m, o = self.model, self.optimizer
        self.state = ([v.value for v in m.trainable_variables], [v.value for v in m.non_trainable_variables],
                      [v.value for v in o.variables])

    def train(self, x_all, y_all, idx):
        self.state, loss, correct = self._train(self.state, x_all, y_all, idx)
        return loss, correct

    def end(self):
        trainable, non_trainable, opt_vars = self.state
        for group, values in ((self.model.trainable_variables, trainable),
                              (self.model.non_trainable_variables, non_trainable), (self.optimizer.variables, opt_vars)):
            for variable, value in zip(group, values):
                variable.assign(value)
        self.state = None

    def set_lr(self, lr: float) -> float:
        """Mid-epoch, the lr is the optimizer's state's: replaced there."""
        if self.state is None:
            return super().set_lr(lr)
        import jax.numpy as jnp

        trainable, non_trainable, opt_vars = self.state
        opt_vars = list(opt_vars)
        opt_vars[self.lr_index] = jnp.asarray(lr, opt_vars[self.lr_index].dtype)
        self.state = (trainable, non_trainable, opt_vars)
        return float(opt_vars[self.lr_index])

    def compilations(self) -> int:
        return self._train._cache_size()

    def forward(self, x):
        m = self.model
        return self._forward([v.value for v in m.trainable_variables], [v.value for v in m.non_trainable_variables], x)


class _TorchSteps(_Steps):
    """Keras on torch: eager autograd, the Keras optimizer applies the gradients."""

    def __init__(self, model, optimizer, weight_decay):
        import torch

        self.torch = torch
        variables = model.trainable_variables

        def train(x_all, y_all, idx):
            x, y = x_all[idx], y_all[idx]
            logits = model(x, training=True)
            loss = _loss(y, logits)
            model.zero_grad()
            loss.backward()
            grads = [v.value.grad for v in variables]
            if weight_decay:
                grads = [g + weight_decay * v.value.detach() for g, v in zip(grads, variables)]
            with torch.no_grad():
                optimizer.apply(grads, variables)
            return loss.detach(), _correct(y, logits.detach())

        self.train, self.optimizer = train, optimizer
        self.forward = lambda x: model(x, training=False)


STEPS = {"tensorflow": _TensorFlowSteps, "jax": _JaxSteps, "torch": _TorchSteps}


# ---------------------------------------------------------------- the backend


class Backend:
    def version(self) -> str:
        engine = keras.backend.backend()
        if engine == "tensorflow":
            import tensorflow as tf

            return f"{keras.__version__} (tensorflow {tf.__version__})"
        module = __import__(engine)
        return f"{keras.__version__} ({engine} {module.__version__})"

    def setup(self, device: str, threads: int, seed: int) -> tuple[str, int]:
        self.engine = keras.backend.backend()
        keras.backend.clear_session()  # a worker's earlier runs leave nothing behind (graphs, layer names)
        gpus = self._gpus()
        self.device = resolve_device(device, bool(gpus), f"Keras ({self.engine})")
        if self.engine == "tensorflow":
            import tensorflow as tf

            if tf.config.threading.get_intra_op_parallelism_threads() != threads:
                try:  # threads for each op's kernels, as torch.set_num_threads; ops run one at a time
                    tf.config.threading.set_intra_op_parallelism_threads(threads)
                    tf.config.threading.set_inter_op_parallelism_threads(1)
                except RuntimeError:  # TensorFlow ran already in this process: its threads are fixed, say which
                    threads = tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count() or 1
            for gpu in tf.config.list_physical_devices("GPU"):
                tf.config.experimental.set_memory_growth(gpu, True)  # never take the whole GPU
            if self.device == "cpu" and gpus:
                tf.config.set_visible_devices([], "GPU")
        elif self.engine == "torch":
            import torch

            torch.set_num_threads(threads)
        keras.utils.set_random_seed(seed)
        return ("cpu" if self.device == "cpu" else f"cuda ({gpus[0]})"), threads

    def _gpus(self) -> list:
        if self.engine == "tensorflow":
            import tensorflow as tf

            return [g.name for g in tf.config.list_physical_devices("GPU")]
        if self.engine == "jax":
            import jax

            return [d.device_kind for d in jax.devices() if d.platform == "gpu"]
        import torch

        return [torch.cuda.get_device_name(0)] if torch.cuda.is_available() else []

    def _array(self, a: np.ndarray):
        if self.engine == "torch":
            import torch

            return torch.from_numpy(np.ascontiguousarray(a)).to("cuda" if self.device == "cuda" else "cpu")
        return ops.convert_to_tensor(np.ascontiguousarray(a))

    def _layout(self, x: np.ndarray) -> np.ndarray:
        """NCHW -> NHWC for LeNet; flat (C*H*W, canonical order) for the MLP."""
        return x.reshape(len(x), -1) if self.model_name == "mlp" else x.transpose(0, 2, 3, 1)

    def set_data(self, train_x, train_y, val_x, val_y) -> None:
        self._numpy = (train_x, train_y, val_x, val_y)  # laid out once the model is known

    def build(self, arch, weights, optimizer, lr) -> None:
        self.model_name = arch.model
        if self.engine == "jax":  # JAX holds float64 only with x64 on, else makes it float32 with a warning alone
            import jax

            jax.config.update("jax_enable_x64", weights_dtype(weights) == "float64")
        keras.config.set_floatx(weights_dtype(weights))
        self.arch, self.model, self.names = arch, build_model(arch), list(weights)
        self.model.set_weights(list(to_layout(weights, arch, CHANNELS_LAST).values()))
        self.optimizer = OPTIMIZER_BUILDERS[optimizer["name"]](None, optimizer, lr)
        self.steps = STEPS[self.engine](self.model, self.optimizer, optimizer["weight_decay"])
        if self._numpy is not None:  # laid out once; a warm-start chain builds again on the same data
            train_x, train_y, val_x, val_y = self._numpy
            self.train_x, self.val_x = self._array(self._layout(train_x)), self._array(self._layout(val_x))
            self.train_y, self.val_y = self._array(train_y), self._array(val_y)
            self._numpy = None

    def set_lr(self, lr: float) -> float:
        return self.steps.set_lr(lr)

    def train_steps(self, order, batch_size, lrs) -> EpochResult:
        losses, correct = [], []
        held = None if lrs is None else np.empty(len(lrs))
        order = self._array(order)
        self.steps.begin()
        for i, start in enumerate(range(0, len(order), batch_size)):
            if lrs is not None:
                held[i] = self.steps.set_lr(lrs[i])
            loss, right = self.steps.train(self.train_x, self.train_y, order[start:start + batch_size])
            losses.append(loss)
            correct.append(right)
        self.steps.end()
        losses = ops.convert_to_numpy(ops.stack(losses)).astype(np.float64)
        return EpochResult(losses, int(ops.convert_to_numpy(ops.sum(ops.stack(correct)))), held)

    def evaluate(self, batch_size, split="val") -> EvalResult:
        loss_sum, predictions = 0.0, []
        xs, ys = (self.train_x, self.train_y) if split == "train" else (self.val_x, self.val_y)
        for start in range(0, len(ys), batch_size):
            logits = self.steps.forward(xs[start:start + batch_size])
            y = ys[start:start + batch_size]
            loss_sum += float(ops.convert_to_numpy(ops.sum(
                keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))))
            predictions.append(ops.convert_to_numpy(ops.argmax(logits, axis=1)))
        return EvalResult(loss_sum, np.concatenate(predictions))

    def weights(self) -> dict[str, np.ndarray]:
        return from_layout(dict(zip(self.names, self.model.get_weights())), self.arch, CHANNELS_LAST)

    def logits(self, x: np.ndarray) -> np.ndarray:
        return ops.convert_to_numpy(self.model(self._array(self._layout(x)), training=False))

    def compilations(self) -> int | None:
        return self.steps.compilations()

    def synchronize(self) -> None:
        if self.engine == "torch" and self.device == "cuda":
            import torch

            torch.cuda.synchronize()
        # TensorFlow and JAX: the epoch's results are fetched as numpy, which waits for the device.
