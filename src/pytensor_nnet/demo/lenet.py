"""A LeNet-5 style network written the way Theano users wrote it.

``conv2d`` (with ``input_shape``/``filter_shape`` hints) and ``pool_2d`` come from
``pytensor_nnet``; parameters are shared variables; one SGD-with-momentum step is a
``pytensor.function(..., updates=...)``. Shapes for the default sizes (batch ``n``)::

    x (n, 1, 28, 28) -> conv 5x5, 20 filters -> (n, 20, 24, 24) -> max-pool 2x2 -> tanh
      -> conv 5x5, 50 filters -> (n, 50, 8, 8) -> max-pool 2x2 -> tanh -> (n, 800)
      -> dense 500, tanh -> dense 10 -> row-wise softmax (n, 10)
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pytensor
import pytensor.tensor as pt

from pytensor_nnet import conv2d
from pytensor_nnet.nnet import categorical_crossentropy, softmax
from pytensor_nnet.pool import pool_2d

ACTIVATIONS = {"tanh": pt.tanh, "relu": lambda z: pt.maximum(z, 0)}


@dataclass(frozen=True)
class Architecture:
    """Layer sizes: two conv+pool stages then one hidden dense layer."""

    image: tuple = (1, 28, 28)
    filters: tuple = (20, 50)
    kernel: int = 5
    pool: int = 2
    hidden: int = 500
    classes: int = 10
    activation: str = "tanh"

    def flat_size(self):
        side = self.image[1]
        for _ in self.filters:
            side = (side - self.kernel + 1) // self.pool
        return self.filters[-1] * side * side


def init_params(arch, rng, dtype):
    """Glorot-uniform weights (pooling divides a filter's fan-out), zero biases.

    Returns a list of numpy arrays ``[W1, b1, W2, b2, W3, b3, W4, b4]`` drawn from ``rng``
    (a ``numpy.random.Generator``) in that order.
    """
    params = []
    channels = arch.image[0]
    k, pool = arch.kernel, arch.pool
    for n_out in arch.filters:
        fan_in = channels * k * k
        fan_out = n_out * k * k // (pool * pool)
        bound = np.sqrt(6.0 / (fan_in + fan_out))
        params += [rng.uniform(-bound, bound, (n_out, channels, k, k)), np.zeros(n_out)]
        channels = n_out
    for n_in, n_out in ((arch.flat_size(), arch.hidden), (arch.hidden, arch.classes)):
        bound = np.sqrt(6.0 / (n_in + n_out))
        params += [rng.uniform(-bound, bound, (n_in, n_out)), np.zeros(n_out)]
    return [p.astype(dtype) for p in params]


def forward(x, params, arch, batch_size=None):
    """Logits ``(n, classes)`` of images ``x (n, C, H, W)``; ``params`` as from :func:`init_params`."""
    act = ACTIVATIONS[arch.activation]
    h = x
    shape = (batch_size, *arch.image)
    for i, n_out in enumerate(arch.filters):
        W, b = params[2 * i], params[2 * i + 1]
        filter_shape = (n_out, shape[1], arch.kernel, arch.kernel)
        conv = conv2d(h, W, input_shape=shape, filter_shape=filter_shape)
        pooled = pool_2d(conv, ws=(arch.pool, arch.pool), ignore_border=True)
        h = act(pooled + b.dimshuffle("x", 0, "x", "x"))
        side = (shape[2] - arch.kernel + 1) // arch.pool
        shape = (batch_size, n_out, side, side)
    W3, b3, W4, b4 = params[-4:]
    h = act(pt.dot(h.flatten(2), W3) + b3)
    return pt.dot(h, W4) + b4


@dataclass
class Network:
    """Compiled LeNet: ``train(x, y, lr) -> loss`` updates the shared parameters, ``predict(x) -> probs``."""

    arch: Architecture
    params: list
    train: object
    predict: object


def compile_network(arch, init, mode="NUMBA", momentum=0.9, weight_decay=1e-4, dtype="float32"):
    """Shared parameters from ``init`` and the two compiled functions of :class:`Network`.

    ``train(x (n, C, H, W), y (n,) int32, lr)`` does one SGD step with momentum
    (``v <- momentum * v - lr * grad``; ``p <- p + v``) on the mean cross-entropy plus
    ``weight_decay / 2 * sum(W ** 2)`` over the weight matrices, and returns the mean
    cross-entropy before the step. With ``lr = 0`` it changes nothing.
    """
    params = [
        pytensor.shared(value, name=name) for value, name in zip(init, ["W1", "b1", "W2", "b2", "W3", "b3", "W4", "b4"])
    ]
    velocities = [pytensor.shared(np.zeros_like(value), name=f"v_{p.name}") for value, p in zip(init, params)]
    x = pt.tensor4("x", dtype=dtype)
    y = pt.ivector("y")
    lr = pt.scalar("lr", dtype=dtype)

    p_y = softmax(forward(x, params, arch))
    nll = pt.mean(categorical_crossentropy(p_y, y))
    cost = nll + weight_decay / 2 * sum((W**2).sum() for W in params[0::2])
    grads = pytensor.grad(cost, params)
    updates = []
    for p, v, g in zip(params, velocities, grads):
        v_new = momentum * v - lr * g
        updates += [(v, v_new.astype(dtype)), (p, (p + v_new).astype(dtype))]
    predict = pytensor.function([x], p_y, mode=mode)
    train = pytensor.function([x, y, lr], nll, updates=updates, mode=mode)
    return Network(arch, params, train, predict)


@dataclass
class History:
    """What :func:`fit` saw: per-batch losses and per-epoch means, validation accuracy and seconds."""

    batch_loss: list
    epoch_loss: list
    val_accuracy: list
    epoch_seconds: list


def accuracy(net, x, y):
    """Fraction of ``x`` whose most probable class is ``y``, and the probabilities ``(n, classes)``."""
    probs = np.asarray(net.predict(x))
    return float(np.mean(probs.argmax(axis=1) == y)), probs


def fit(net, data, epochs, batch_size, lr, rng, on_batch=None, on_epoch=None):
    """Train ``net`` on ``data.x_train`` for ``epochs`` passes of shuffled mini-batches.

    The order of each pass is ``rng.permutation`` (a ``numpy.random.Generator``), so a seed
    fixes the run. ``on_batch(epoch, done_images, loss, seconds)`` runs after every step,
    ``on_epoch(epoch, mean_loss, val_accuracy, seconds)`` after every pass (the seconds count
    the training steps only, not the validation). Returns a :class:`History`.
    """
    lr = np.asarray(lr, dtype=net.params[0].dtype)
    n = len(data.y_train)
    history = History([], [], [], [])
    for epoch in range(epochs):
        order = rng.permutation(n)
        losses, seconds = [], 0.0
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            tic = time.perf_counter()
            loss = float(net.train(data.x_train[idx], data.y_train[idx], lr))
            seconds += time.perf_counter() - tic
            losses.append(loss)
            if on_batch is not None:
                on_batch(epoch, start + len(idx), loss, seconds)
        mean_loss = float(np.average(losses, weights=[min(batch_size, n - s) for s in range(0, n, batch_size)]))
        val_acc, _ = accuracy(net, data.x_val, data.y_val)
        history.batch_loss += losses
        history.epoch_loss.append(mean_loss)
        history.val_accuracy.append(val_acc)
        history.epoch_seconds.append(seconds)
        if on_epoch is not None:
            on_epoch(epoch, mean_loss, val_acc, seconds)
    return history
