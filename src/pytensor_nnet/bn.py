"""Batch normalization: the legacy ``theano.tensor.nnet.bn`` / ``pytensor.tensor.nnet.batchnorm``.

Migrating is one import line: ``from theano.tensor.nnet import bn`` becomes
``from pytensor_nnet import bn`` (``pytensor_nnet.batchnorm`` is the same module).

- :func:`batch_normalization` normalises with given statistics (``mean``, ``std``);
- :func:`batch_normalization_train` computes the minibatch statistics over ``axes``
  (``'per-activation'``: axis 0; ``'spatial'``: axes 0, 2, 3, ...; or a tuple of axes) and can
  update running averages (the running variance uses the unbiased estimate ``m / (m - 1)``);
- :func:`batch_normalization_test` normalises with running statistics.

The parameters (``gamma``, ``beta``, means and variances) have either the rank of ``inputs``
with length 1 on the normalised axes, or one axis per non-normalised axis (the normalised
axes "skipped"); the statistics returned by :func:`batch_normalization_train` have the rank
of ``gamma`` (and the running averages the rank of ``running_mean``), as in the legacy code.

Everything is a graph of PyTensor Ops (reductions and elementwise arithmetic): gradients wrt
every input come from PyTensor and every backend runs it. Differences from the legacy code:
``epsilon`` may be any value ``>= 0`` (the legacy code, written for cuDNN, required
``>= 1e-5``), parameter shapes that do not fit ``inputs`` raise ``ValueError`` naming the
parameter, and negative ``axes`` count from the end.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt

from pytensor_nnet.nnet import (
    as_tensor,
    check_at_run_time,
    check_same_shape,
    dims_equal,
    static_or_symbolic_shape,
)

__all__ = ["batch_normalization", "batch_normalization_test", "batch_normalization_train"]


def batch_normalization(inputs, gamma, beta, mean, std, mode="low_mem"):
    """``(inputs - mean) * (gamma / std) + beta``, elementwise with broadcasting.

    Parameters
    ----------
    inputs : tensor, any shape
    gamma, beta, mean, std : tensors broadcastable to ``inputs`` (fewer axes align on the right,
        length-1 axes broadcast): scale, shift, and the statistics to normalise with.
    mode : ``'low_mem'`` or ``'high_mem'``
        Kept for compatibility; both compile to the same fused elementwise loop.

    Returns
    -------
    tensor of ``inputs``' shape.
    """
    fname = "batch_normalization"
    if mode not in ("low_mem", "high_mem"):
        raise ValueError(f"{fname}: mode must be 'low_mem' or 'high_mem'; got {mode!r}")
    inputs = as_tensor(inputs, "inputs", fname)
    args = {}
    for name, v in [("gamma", gamma), ("beta", beta), ("mean", mean), ("std", std)]:
        args[name] = check_same_shape(as_tensor(v, name, fname), inputs, name, "inputs", fname)
    if mode == "low_mem":
        return (inputs - args["mean"]) * (args["gamma"] / args["std"]) + args["beta"]
    return (inputs - args["mean"]) / args["std"] * args["gamma"] + args["beta"]


def _normalized_axes(axes, ndim, fname):
    """``axes`` ('per-activation', 'spatial' or ints) as a sorted tuple of distinct ints."""
    if isinstance(axes, str):
        if axes == "per-activation":
            return (0,)
        if axes == "spatial":
            return (0, *range(2, ndim))
        raise ValueError(f"{fname}: axes must be 'per-activation', 'spatial' or a tuple of ints; got {axes!r}")
    try:
        axes = tuple(axes)
    except TypeError:
        raise ValueError(
            f"{fname}: axes must be 'per-activation', 'spatial' or a tuple of ints; got {axes!r}"
        ) from None
    out = []
    for a in axes:
        if not isinstance(a, int | np.integer) or isinstance(a, bool):
            raise ValueError(f"{fname}: axes entries must be ints; got {axes!r}")
        if not -ndim <= a < ndim:
            raise ValueError(f"{fname}: axes {axes!r} out of range for {ndim}-d inputs")
        out.append(int(a) % ndim)
    if len(set(out)) != len(out) or not out:
        raise ValueError(f"{fname}: axes must be distinct and non-empty; got {axes!r}")
    return tuple(sorted(out))


def _number_or_scalar(value, name, fname, like, minimum=None):
    """``value`` (a number, as a constant of ``like``'s float dtype, or a 0-d tensor)."""
    if isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool):
        if minimum is not None and value < minimum:
            raise ValueError(f"{fname}: {name} must be >= {minimum}; got {value!r}")
        dtype = like.dtype if like.dtype.startswith("float") else "float64"
        return pt.constant(np.asarray(value, dtype=dtype))
    value = as_tensor(value, name, fname)
    if value.ndim != 0:
        raise ValueError(f"{fname}: {name} must be a scalar; got a {value.ndim}-d tensor")
    return value


class _ParamLayout:
    """How a parameter of ``inputs`` with normalised ``axes`` is laid out (see module doc)."""

    def __init__(self, inputs, axes, fname):
        self.inputs, self.axes, self.fname = inputs, axes, fname
        self.kept = [i for i in range(inputs.ndim) if i not in axes]

    def expand(self, p, name):
        """``p`` in the full-rank form, length 1 (broadcastable) on the normalised axes."""
        p = as_tensor(p, name, self.fname)
        x, axes, fname = self.inputs, self.axes, self.fname
        if p.ndim == x.ndim - len(axes):
            pattern, it = [], iter(range(p.ndim))
            for i in range(x.ndim):
                pattern.append("x" if i in axes else next(it))
            full, kept = p.dimshuffle(pattern), list(zip(range(p.ndim), self.kept))
        elif p.ndim == x.ndim:
            for a in axes:
                eq = dims_equal(static_or_symbolic_shape(p, a), 1)
                if eq is False:
                    raise ValueError(
                        f"{fname}: {name} has shape {p.type.shape}; it must have length 1 on the normalised axes {axes}"
                    )
                p = check_at_run_time(p, eq, f"{fname}: {name} must have length 1 on the normalised axes {axes}")
            full, kept = pt.specify_broadcastable(p, *axes), [(i, i) for i in self.kept]
        else:
            raise ValueError(
                f"{fname}: {name} must have {x.ndim} axes (length 1 on the normalised axes {axes}) or "
                f"{x.ndim - len(axes)} (the normalised axes skipped); got a {p.ndim}-d tensor"
            )
        for pi, xi in kept:
            if p.type.shape[pi] == 1 and x.type.shape[xi] != 1:
                continue  # a broadcastable parameter axis: allowed, as in elementwise ops
            eq = dims_equal(static_or_symbolic_shape(p, pi), static_or_symbolic_shape(x, xi))
            if eq is False:
                raise ValueError(
                    f"{fname}: {name} has shape {p.type.shape}, which does not fit inputs of shape "
                    f"{x.type.shape} normalised over axes {axes}"
                )
            full = check_at_run_time(full, eq, f"{fname}: {name} does not fit the shape of inputs (axis {xi})")
        return full, p.ndim

    def contract(self, full, ndim):
        """A full-rank statistic back in the rank ``ndim`` of the parameter it goes with."""
        if ndim == self.inputs.ndim:
            return full
        return full.squeeze(axis=self.axes)


def batch_normalization_train(
    inputs,
    gamma,
    beta,
    axes="per-activation",
    epsilon=1e-4,
    running_average_factor=0.1,
    running_mean=None,
    running_var=None,
):
    """Batch normalization with the statistics of the minibatch.

    ``out = (inputs - mean) * invstd * gamma + beta`` with ``mean`` and ``var`` (biased) taken
    over ``axes`` and ``invstd = 1 / sqrt(var + epsilon)``.

    Parameters
    ----------
    inputs : tensor (batch, ...)
    gamma, beta : tensors, scale and shift: rank of ``inputs`` with length 1 on ``axes``, or
        rank ``inputs.ndim - len(axes)`` (the normalised axes skipped); same rank both.
    axes : ``'per-activation'`` (``(0,)``), ``'spatial'`` (``(0, 2, 3, ...)``) or a tuple of ints
    epsilon : float >= 0 (default 1e-4)
    running_average_factor : float (default 0.1)
        ``new_running = running * (1 - factor) + batch_statistic * factor``.
    running_mean, running_var : tensors laid out as ``gamma``, optional (both or neither)

    Returns
    -------
    out : tensor of ``inputs``' shape
    mean, invstd : the minibatch statistics, laid out as ``gamma``
    new_running_mean, new_running_var : only if ``running_mean``/``running_var`` are given,
        laid out as them; the variance is the unbiased one (``var * m / (m - 1)`` with ``m``
        the number of values per statistic).
    """
    fname = "batch_normalization_train"
    x = as_tensor(inputs, "inputs", fname)
    if x.ndim == 0:
        raise ValueError(f"{fname}: inputs must have at least 1 axis; got a 0-d tensor")
    axes = _normalized_axes(axes, x.ndim, fname)
    epsilon = _number_or_scalar(epsilon, "epsilon", fname, x, minimum=0)
    factor = _number_or_scalar(running_average_factor, "running_average_factor", fname, x)
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{fname}: running_mean and running_var must both be given or both be None")
    layout = _ParamLayout(x, axes, fname)
    gamma_f, ndim = layout.expand(gamma, "gamma")
    beta_f, beta_ndim = layout.expand(beta, "beta")
    if beta_ndim != ndim:
        raise ValueError(f"{fname}: gamma and beta must have the same rank; got {ndim}-d and {beta_ndim}-d")
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    invstd = pt.reciprocal(pt.sqrt(var + epsilon))
    out = (x - mean) * (invstd * gamma_f) + beta_f
    results = [out, layout.contract(mean, ndim), layout.contract(invstd, ndim)]
    if running_mean is not None:
        rm_f, rm_ndim = layout.expand(running_mean, "running_mean")
        rv_f, rv_ndim = layout.expand(running_var, "running_var")
        m = pt.cast(pt.prod([x.shape[a] for a in axes]), var.dtype)
        new_rm = rm_f * (1.0 - factor) + mean * factor
        new_rv = rv_f * (1.0 - factor) + (m / (m - 1)) * var * factor
        results += [layout.contract(new_rm, rm_ndim), layout.contract(new_rv, rv_ndim)]
    return tuple(results)


def batch_normalization_test(inputs, gamma, beta, mean, var, axes="per-activation", epsilon=1e-4):
    """Batch normalization with given (running) statistics:
    ``(inputs - mean) * gamma / sqrt(var + epsilon) + beta``.

    ``gamma``, ``beta``, ``mean``, ``var`` are laid out as in :func:`batch_normalization_train`
    for the same ``axes`` (each may use either layout). Returns a tensor of ``inputs``' shape.
    """
    fname = "batch_normalization_test"
    x = as_tensor(inputs, "inputs", fname)
    if x.ndim == 0:
        raise ValueError(f"{fname}: inputs must have at least 1 axis; got a 0-d tensor")
    axes = _normalized_axes(axes, x.ndim, fname)
    epsilon = _number_or_scalar(epsilon, "epsilon", fname, x, minimum=0)
    layout = _ParamLayout(x, axes, fname)
    p = {
        name: layout.expand(v, name)[0] for name, v in [("gamma", gamma), ("beta", beta), ("mean", mean), ("var", var)]
    }
    return (x - p["mean"]) * (p["gamma"] / pt.sqrt(p["var"] + epsilon)) + p["beta"]
