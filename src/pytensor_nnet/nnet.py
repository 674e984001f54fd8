"""Activations, the softmax family and the losses of the legacy ``theano.tensor.nnet.nnet`` /
``pytensor.tensor.nnet.basic`` and ``.sigm`` modules, with their names and semantics.

Migrating is one import line: ``from theano.tensor import nnet`` (``T.nnet.softmax``, ...)
becomes ``from pytensor_nnet import nnet`` (or ``import pytensor_nnet as nnet``).

Everything is a graph of PyTensor's own Ops (``Softmax``, ``LogSoftmax``, ``sigmoid``,
``softplus``, elementwise arithmetic, indexing), so every backend that runs PyTensor runs it,
gradients of any order come from PyTensor, and Numba compiles it without object-mode
fallbacks. Bad arguments raise ``TypeError``/``ValueError`` naming the argument, when the graph
is built if the shapes are static, otherwise when the function runs (``CheckAndRaise``).

Semantic traps this module avoids (see ``docs/migration.md``):

- :func:`softmax` normalises over the **last axis** (each row of a matrix), as the legacy
  function did. PyTensor's own ``pytensor.tensor.special.softmax(x)`` defaults to
  ``axis=None`` and normalises over the whole tensor (the whole minibatch).
- :func:`categorical_crossentropy`, :func:`crossentropy_softmax_1hot` & co. take the log of
  the softmax *input* (``log_softmax``) whenever they can, so costs and gradients stay finite
  for confident predictions without relying on graph rewrites.
- Class indices outside ``[0, n_classes)`` raise ``ValueError`` (the legacy
  ``categorical_crossentropy`` wrapped negative indices around).

Differences from the legacy code, on purpose: float32 stays float32 (``selu`` and ``relu``
with a Python ``alpha`` returned float64), :func:`ultra_fast_sigmoid` and the
``prepend_*`` functions are differentiable, :func:`h_softmax` checks ``n_outputs`` and the
targets, :func:`categorical_crossentropy` accepts class-index targets of any rank.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.raise_op import CheckAndRaise
from pytensor.tensor.math import sigmoid, softplus
from pytensor.tensor.special import LogSoftmax, Softmax
from pytensor.tensor.special import log_softmax as _pt_log_softmax
from pytensor.tensor.special import softmax as _pt_softmax

__all__ = [
    "LogSoftmax",
    "Softmax",
    "binary_crossentropy",
    "categorical_crossentropy",
    "confusion_matrix",
    "crossentropy_categorical_1hot",
    "crossentropy_categorical_1hot_grad",
    "crossentropy_softmax_1hot",
    "crossentropy_softmax_1hot_with_bias",
    "crossentropy_softmax_1hot_with_bias_dx",
    "crossentropy_softmax_argmax_1hot_with_bias",
    "crossentropy_softmax_max_and_argmax_1hot",
    "crossentropy_softmax_max_and_argmax_1hot_with_bias",
    "elu",
    "h_softmax",
    "hard_sigmoid",
    "logsoftmax",
    "prepend_0_to_each_row",
    "prepend_1_to_each_row",
    "prepend_scalar_to_each_row",
    "relu",
    "selu",
    "sigmoid",
    "sigmoid_binary_crossentropy",
    "softmax",
    "softmax_grad_legacy",
    "softmax_graph",
    "softmax_legacy",
    "softmax_with_bias",
    "softplus",
    "softsign",
    "ultra_fast_sigmoid",
]


# ----------------------------------------------------------------------------- argument checks
def as_tensor(x, name, fname):
    """``x`` as a tensor variable, or ``TypeError`` naming ``fname``'s argument ``name``."""
    try:
        return pt.as_tensor_variable(x)
    except (TypeError, ValueError, NotImplementedError) as err:
        raise TypeError(f"{fname}: {name} must be a tensor or array-like; got {type(x).__name__} ({err})") from None


def require_ndim(x, ndims, name, fname, what=None):
    """``ValueError`` unless ``x.ndim`` is in ``ndims`` (an int or a tuple of ints)."""
    ndims = (ndims,) if isinstance(ndims, int) else tuple(ndims)
    if x.ndim not in ndims:
        want = what or " or ".join(f"{n}-d" for n in ndims)
        raise ValueError(f"{fname}: {name} must be {want}; got a {x.ndim}-d tensor of type {x.type}")


def require_float(x, name, fname):
    """``TypeError`` unless ``x`` has a floating-point dtype."""
    if not x.dtype.startswith("float"):
        raise TypeError(f"{fname}: {name} must have a float dtype; got {x.dtype}")


def require_int(x, name, fname):
    """``TypeError`` unless ``x`` has a (signed or unsigned) integer dtype."""
    if not x.dtype.startswith(("int", "uint")):
        raise TypeError(f"{fname}: {name} must have an integer dtype (class indices); got {x.dtype}")


def check_at_run_time(x, cond, msg):
    """``x``, guarded by ``cond``: a ``ValueError(msg)`` when the function runs if it is false.

    A ``cond`` that is the Python bool ``True`` adds nothing; ``False`` raises now.
    """
    if cond is True:
        return x
    if cond is False:
        raise ValueError(msg)
    return CheckAndRaise(ValueError, msg)(x, cond)


def dims_equal(a, b):
    """``a == b`` for two shape entries: a Python bool when both are static, else symbolic."""
    if isinstance(a, int | np.integer) and isinstance(b, int | np.integer):
        return bool(a == b)
    return pt.eq(a, b)


def static_or_symbolic_shape(x, axis):
    """Static length of ``x`` along ``axis`` if known, else ``x.shape[axis]``."""
    s = x.type.shape[axis]
    return s if s is not None else x.shape[axis]


def check_same_shape(target, x, tname, xname, fname):
    """``target`` guarded so that it broadcasts to ``x``'s shape without changing it.

    ``target`` may have fewer axes (aligned on the right) and statically broadcastable
    (length-1) axes; every other axis must have the length of ``x``'s.
    """
    if target.ndim > x.ndim:
        raise ValueError(
            f"{fname}: {tname} has more axes ({target.ndim}-d) than {xname} ({x.ndim}-d); it would "
            f"broadcast {xname} to a larger result"
        )
    offset = x.ndim - target.ndim
    for i in range(target.ndim):
        if target.type.shape[i] == 1:
            continue
        a, b = static_or_symbolic_shape(target, i), static_or_symbolic_shape(x, i + offset)
        eq = dims_equal(a, b)
        if eq is False:
            raise ValueError(
                f"{fname}: {tname} has shape {target.type.shape}, which does not match the shape "
                f"{x.type.shape} of {xname} (axis {i})"
            )
        target = check_at_run_time(
            target, eq, f"{fname}: {tname} and {xname} have different lengths along axis {i} of {tname}"
        )
    return target


def check_class_indices(y, x, yname, xname, fname, n_classes=None):
    """``y`` (int class indices, one per row of the matrix ``x``) guarded at run time:
    ``len(y) == x.shape[0]`` and ``0 <= y < n_classes`` (default ``x.shape[1]``)."""
    rows = dims_equal(static_or_symbolic_shape(y, 0), static_or_symbolic_shape(x, 0))
    if rows is False:
        raise ValueError(f"{fname}: {yname} has {y.type.shape[0]} entries but {xname} has {x.type.shape[0]} rows")
    y = check_at_run_time(y, rows, f"{fname}: {yname} must have one entry per row of {xname}")
    n_classes = x.shape[1] if n_classes is None else n_classes
    in_range = pt.all(pt.ge(y, 0)) & pt.all(pt.lt(y, n_classes))
    return check_at_run_time(y, in_range, f"{fname}: {yname} values must be class indices in [0, n_classes)")


def _const(value, like):
    """The Python number ``value`` as a constant of ``like``'s float dtype (so float32 stays
    float32: PyTensor keeps a Python float that float32 cannot represent exactly as float64)."""
    if like.dtype.startswith("float"):
        return pt.constant(np.asarray(value, dtype=like.dtype))
    return value


def _rows_pick(m, y):
    """``m[i, y[i]]`` for every row ``i`` of the matrix ``m``."""
    return m[pt.arange(m.shape[0]), y]


def _axes(axis, ndim):
    """A Softmax Op's ``axis`` (an int, a tuple, or None for all) as a tuple of axes >= 0."""
    if axis is None:
        return tuple(range(ndim))
    return tuple(a % ndim for a in ((axis,) if isinstance(axis, int) else axis))


def _softmax_input(c):
    """``z`` if ``c`` is ``softmax(z)`` over its last axis (so ``log(c)`` is ``log_softmax(z)``)."""
    node = c.owner
    if node is not None and isinstance(node.op, Softmax) and _axes(node.op.axis, c.ndim) == (c.ndim - 1,):
        return node.inputs[0]
    return None


def _log_prob(c):
    """``log(c)``, as ``log_softmax(z)`` when ``c`` is ``softmax(z)`` (no underflow to ``-inf``)."""
    z = _softmax_input(c)
    return pt.log(c) if z is None else _pt_log_softmax(z, axis=-1)


# ----------------------------------------------------------------------------- activations
def ultra_fast_sigmoid(x):
    """Piecewise-rational approximation of :func:`sigmoid` (max. error ~0.02), elementwise.

    The legacy formula: with ``h = x / 2``, ``z = 1.5 h / (1 + |h|)`` for ``|h| < 1.7``, a line
    through ``(1.7, 0.9354)`` of slope ``0.04588`` up to ``|h| < 3``, then ``0.99505``
    (odd in ``h``); the result is ``(z + 1) / 2``. Same shape and float dtype as ``x``.
    Differentiable (the legacy scalar op had no gradient): the gradient is the derivative of
    the approximation (0 for ``|x| >= 6``).
    """
    x = as_tensor(x, "x", "ultra_fast_sigmoid")
    h = 0.5 * x
    a = pt.abs(h)
    slope = 0.0458812946797165
    z = pt.switch(
        pt.lt(a, _const(1.7, h)),
        1.5 * h / (1.0 + a),
        pt.switch(
            pt.lt(a, 3.0),
            _const(slope, h) * h + pt.sign(h) * _const(0.935409070603099 - slope * 1.7, h),
            pt.sign(h) * _const(0.99505475368673, h),
        ),
    )
    return 0.5 * z + 0.5


def hard_sigmoid(x):
    """``clip(0.2 * x + 0.5, 0, 1)`` elementwise: a piecewise-linear sigmoid. Same shape as ``x``."""
    x = as_tensor(x, "x", "hard_sigmoid")
    y = _const(0.2, x) * x + 0.5
    return pt.clip(y, _const(0.0, y), _const(1.0, y))


def softsign(x):
    """``x / (1 + |x|)`` elementwise. Same shape as ``x``."""
    x = as_tensor(x, "x", "softsign")
    return x / (1.0 + pt.abs(x))


def relu(x, alpha=0):
    """Rectified linear unit, elementwise: ``x`` where ``x > 0``, else ``alpha * x``.

    Parameters
    ----------
    x : tensor, any shape
    alpha : scalar or tensor broadcastable to ``x``, default 0
        Slope of the negative part (``alpha != 0``: leaky ReLU). As in the legacy code the
        result is ``0.5 * (1 + alpha) * x + 0.5 * (1 - alpha) * |x|``, so the gradient at
        ``x == 0`` is ``(1 + alpha) / 2``.

    Returns
    -------
    tensor, shape of ``x`` (broadcast with ``alpha``)
    """
    x = as_tensor(x, "x", "relu")
    if isinstance(alpha, int | float | np.integer | np.floating) and not isinstance(alpha, bool):
        if alpha == 0:
            return 0.5 * (x + pt.abs(x))
        f1, f2 = 0.5 * (1 + float(alpha)), 0.5 * (1 - float(alpha))
        return _const(f1, x) * x + _const(f2, x) * pt.abs(x)
    alpha = as_tensor(alpha, "alpha", "relu")
    return 0.5 * (1 + alpha) * x + 0.5 * (1 - alpha) * pt.abs(x)


def elu(x, alpha=1):
    """Exponential linear unit, elementwise: ``x`` where ``x > 0``, else ``alpha * (exp(x) - 1)``.

    ``x``: tensor, any shape; ``alpha``: scalar (or tensor broadcastable to ``x``). Returns a
    tensor of ``x``'s shape.
    """
    x = as_tensor(x, "x", "elu")
    if isinstance(alpha, int | float | np.integer | np.floating) and not isinstance(alpha, bool):
        alpha = _const(float(alpha), pt.expm1(x))
    return pt.switch(pt.gt(x, 0), x, alpha * pt.expm1(x))


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(x):
    """Scaled ELU (Klambauer et al., 2017), elementwise: ``scale * elu(x, alpha)`` with
    ``alpha = 1.67326...`` and ``scale = 1.05070...``. Same shape (and float dtype) as ``x``."""
    x = as_tensor(x, "x", "selu")
    y = elu(x, _SELU_ALPHA)
    return _const(_SELU_SCALE, y) * y


# ----------------------------------------------------------------------------- softmax family
def softmax(c, axis=-1):
    """Softmax over ``axis`` (default: the **last** axis, i.e. each row of a matrix).

    ``c``: tensor of any rank >= 1; ``axis``: int, tuple of ints, or ``None`` (all axes, as
    PyTensor's own default). Returns a tensor of ``c``'s shape whose slices along ``axis``
    sum to 1. This is the legacy default; ``pytensor.tensor.special.softmax(c)`` with no
    ``axis`` normalises over the whole tensor instead.
    """
    c = as_tensor(c, "c", "softmax")
    if c.ndim == 0:
        raise ValueError("softmax: c must have at least 1 axis; got a 0-d tensor")
    return _pt_softmax(c, axis=axis)


def logsoftmax(c, axis=-1):
    """``log(softmax(c, axis))``, computed stably (``c - logsumexp(c, axis)``); last axis by
    default. ``c``: tensor of rank >= 1; returns a tensor of ``c``'s shape."""
    c = as_tensor(c, "c", "logsoftmax")
    if c.ndim == 0:
        raise ValueError("logsoftmax: c must have at least 1 axis; got a 0-d tensor")
    return _pt_log_softmax(c, axis=axis)


def softmax_graph(c):
    """Softmax over the last axis written with elementary ops, ``exp(c) / sum(exp(c), -1)``
    (Theano's ``softmax_graph``); PyTensor's rewrites turn it into the stable ``Softmax`` Op.
    Shape of ``c``."""
    c = as_tensor(c, "c", "softmax_graph")
    if c.ndim == 0:
        raise ValueError("softmax_graph: c must have at least 1 axis; got a 0-d tensor")
    e = pt.exp(c)
    return e / e.sum(axis=-1, keepdims=True)


def softmax_legacy(c):
    """Softmax over the last axis (the legacy ``Softmax{axis=-1}`` Op instance). Shape of ``c``."""
    return softmax(c, axis=-1)


def softmax_grad_legacy(dy, sm):
    """Gradient of :func:`softmax` over the last axis: ``sm * (dy - sum(dy * sm, -1))``.

    ``dy``: gradient of the cost wrt the softmax output; ``sm``: the softmax output; both of
    the same shape (rank >= 1). Returns the gradient wrt the softmax input, same shape.
    """
    fname = "softmax_grad_legacy"
    dy, sm = as_tensor(dy, "dy", fname), as_tensor(sm, "sm", fname)
    if dy.ndim != sm.ndim or dy.ndim == 0:
        raise ValueError(f"{fname}: dy and sm must have the same rank >= 1; got {dy.ndim}-d and {sm.ndim}-d")
    dy = check_same_shape(dy, sm, "dy", "sm", fname)
    return sm * (dy - (dy * sm).sum(axis=-1, keepdims=True))


def _matrix_and_bias(x, b, fname):
    x = as_tensor(x, "x", fname)
    require_ndim(x, 2, "x", fname, "a matrix (batch, n_classes)")
    require_float(x, "x", fname)
    if b is None:
        return x, x
    b = as_tensor(b, "b", fname)
    require_ndim(b, 1, "b", fname, "a vector (n_classes,)")
    require_float(b, "b", fname)
    eq = dims_equal(static_or_symbolic_shape(x, 1), static_or_symbolic_shape(b, 0))
    if eq is False:
        raise ValueError(f"{fname}: x has {x.type.shape[1]} columns but b has length {b.type.shape[0]}")
    b = check_at_run_time(b, eq, f"{fname}: the length of b must be the number of columns of x")
    return x, x + b


def softmax_with_bias(x, b):
    """``softmax(x + b)`` row-wise. ``x``: float matrix (batch, n_classes); ``b``: float vector
    (n_classes,). Returns (batch, n_classes)."""
    _, z = _matrix_and_bias(x, b, "softmax_with_bias")
    return softmax(z, axis=-1)


def _xent_softmax(x, b, y_idx, fname):
    """(z = x [+ b], softmax(z), -log_softmax(z)[i, y_idx[i]]) after checking the arguments."""
    x, z = _matrix_and_bias(x, b, fname)
    y_idx = as_tensor(y_idx, "y_idx", fname)
    require_ndim(y_idx, 1, "y_idx", fname, "a vector of class indices (batch,)")
    require_int(y_idx, "y_idx", fname)
    y_idx = check_class_indices(y_idx, x, "y_idx", "x", fname)
    sm = _pt_softmax(z, axis=-1)
    nll = -_rows_pick(_pt_log_softmax(z, axis=-1), y_idx)
    return z, sm, nll


def _no_kwargs(kwargs, fname):
    if kwargs:
        raise TypeError(f"{fname}() got unexpected keyword arguments {sorted(kwargs)}")


def crossentropy_softmax_1hot_with_bias(x, b, y_idx, **kwargs):
    """Softmax of ``x + b`` and its negative log-likelihood of the labels ``y_idx``.

    Parameters
    ----------
    x : float matrix (batch, n_classes)
    b : float vector (n_classes,)
    y_idx : int vector (batch,), values in ``[0, n_classes)``

    Returns
    -------
    [nll, sm] : ``nll`` (batch,) ``= -log(sm[i, y_idx[i]])`` (computed as ``log_softmax``),
        ``sm`` (batch, n_classes) the softmax.
    """
    _no_kwargs(kwargs, "crossentropy_softmax_1hot_with_bias")
    _, sm, nll = _xent_softmax(x, b, y_idx, "crossentropy_softmax_1hot_with_bias")
    return [nll, sm]


def crossentropy_softmax_1hot(x, y_idx, **kwargs):
    """:func:`crossentropy_softmax_1hot_with_bias` with no bias: ``[nll (batch,), sm (batch,
    n_classes)]`` for ``x`` (batch, n_classes) and int labels ``y_idx`` (batch,)."""
    _no_kwargs(kwargs, "crossentropy_softmax_1hot")
    _, sm, nll = _xent_softmax(x, None, y_idx, "crossentropy_softmax_1hot")
    return [nll, sm]


def crossentropy_softmax_argmax_1hot_with_bias(x, b, y_idx):
    """``[nll (batch,), sm (batch, n_classes), argmax (batch,) int64]``: as
    :func:`crossentropy_softmax_1hot_with_bias`, plus each row's predicted class."""
    z, sm, nll = _xent_softmax(x, b, y_idx, "crossentropy_softmax_argmax_1hot_with_bias")
    return [nll, sm, pt.argmax(z, axis=-1)]


def crossentropy_softmax_max_and_argmax_1hot_with_bias(x, b, y_idx, **kwargs):
    """``(nll, sm, max, argmax)``: as :func:`crossentropy_softmax_1hot_with_bias`, plus each
    row's largest probability ``max`` (batch,) and its class ``argmax`` (batch,) int64."""
    _no_kwargs(kwargs, "crossentropy_softmax_max_and_argmax_1hot_with_bias")
    z, sm, nll = _xent_softmax(x, b, y_idx, "crossentropy_softmax_max_and_argmax_1hot_with_bias")
    return nll, sm, pt.max(sm, axis=-1), pt.argmax(z, axis=-1)


def crossentropy_softmax_max_and_argmax_1hot(x, y_idx, **kwargs):
    """``(nll, sm, max, argmax)`` of :func:`crossentropy_softmax_max_and_argmax_1hot_with_bias`
    with no bias; ``x`` (batch, n_classes), ``y_idx`` (batch,)."""
    _no_kwargs(kwargs, "crossentropy_softmax_max_and_argmax_1hot")
    z, sm, nll = _xent_softmax(x, None, y_idx, "crossentropy_softmax_max_and_argmax_1hot")
    return nll, sm, pt.max(sm, axis=-1), pt.argmax(z, axis=-1)


def crossentropy_softmax_1hot_with_bias_dx(dy, sm, y_idx):
    """Gradient of the ``nll`` of :func:`crossentropy_softmax_1hot_with_bias` wrt ``x``:
    ``dy[:, None] * (sm - onehot(y_idx))``.

    ``dy``: float vector (batch,) (or a scalar), the gradient wrt ``nll``; ``sm``: softmax
    (batch, n_classes); ``y_idx``: int vector (batch,). Returns (batch, n_classes).
    """
    fname = "crossentropy_softmax_1hot_with_bias_dx"
    dy, sm, y_idx = as_tensor(dy, "dy", fname), as_tensor(sm, "sm", fname), as_tensor(y_idx, "y_idx", fname)
    require_ndim(dy, (0, 1), "dy", fname, "a vector (batch,) or a scalar")
    require_ndim(sm, 2, "sm", fname, "a matrix (batch, n_classes)")
    require_ndim(y_idx, 1, "y_idx", fname, "a vector of class indices (batch,)")
    require_float(sm, "sm", fname)
    require_int(y_idx, "y_idx", fname)
    y_idx = check_class_indices(y_idx, sm, "y_idx", "sm", fname)
    if dy.ndim == 1:
        dy = check_same_shape(dy, y_idx, "dy", "y_idx", fname)
        dy = dy[:, None]
    onehot = pt.eq(pt.arange(sm.shape[1])[None, :], y_idx[:, None])
    return dy * (sm - onehot)


def crossentropy_categorical_1hot(coding_dist, true_one_of_n):
    """``-log(coding_dist[i, true_one_of_n[i]])`` for each row ``i``.

    ``coding_dist``: float matrix (batch, n_classes) of probabilities; ``true_one_of_n``: int
    vector (batch,) of class indices in ``[0, n_classes)``. Returns (batch,). If
    ``coding_dist`` is ``softmax(z)`` the log is taken as ``log_softmax(z)``.
    """
    fname = "crossentropy_categorical_1hot"
    c = as_tensor(coding_dist, "coding_dist", fname)
    y = as_tensor(true_one_of_n, "true_one_of_n", fname)
    require_ndim(c, 2, "coding_dist", fname, "a matrix (batch, n_classes)")
    require_float(c, "coding_dist", fname)
    require_ndim(y, 1, "true_one_of_n", fname, "a vector of class indices (batch,)")
    require_int(y, "true_one_of_n", fname)
    y = check_class_indices(y, c, "true_one_of_n", "coding_dist", fname)
    z = _softmax_input(c)
    if z is not None:
        return -_rows_pick(_pt_log_softmax(z, axis=-1), y)
    return -pt.log(_rows_pick(c, y))


def crossentropy_categorical_1hot_grad(g_y, coding_dist, true_one_of_n):
    """Gradient of :func:`crossentropy_categorical_1hot` wrt ``coding_dist``.

    ``g_y``: float vector (batch,), gradient wrt the output; ``coding_dist`` (batch,
    n_classes); ``true_one_of_n`` int (batch,). Returns (batch, n_classes): zero except
    ``-g_y[i] / coding_dist[i, true_one_of_n[i]]`` at the true classes.
    """
    fname = "crossentropy_categorical_1hot_grad"
    g = as_tensor(g_y, "g_y", fname)
    c = as_tensor(coding_dist, "coding_dist", fname)
    y = as_tensor(true_one_of_n, "true_one_of_n", fname)
    require_ndim(g, 1, "g_y", fname, "a vector (batch,)")
    require_ndim(c, 2, "coding_dist", fname, "a matrix (batch, n_classes)")
    require_ndim(y, 1, "true_one_of_n", fname, "a vector of class indices (batch,)")
    require_int(y, "true_one_of_n", fname)
    y = check_class_indices(y, c, "true_one_of_n", "coding_dist", fname)
    g = check_same_shape(g, y, "g_y", "true_one_of_n", fname)
    rows = pt.arange(c.shape[0])
    vals = -g / c[rows, y]
    return pt.set_subtensor(pt.zeros_like(c, dtype=vals.dtype)[rows, y], vals)


def categorical_crossentropy(coding_dist, true_dist):
    """Cross-entropy between a predicted distribution and targets, over the last axis.

    Parameters
    ----------
    coding_dist : float tensor (..., n_classes)
        Predicted probabilities (e.g. the output of :func:`softmax`; then the log is taken as
        ``log_softmax`` of the softmax input, which cannot underflow).
    true_dist : tensor
        Either a distribution of the same shape as ``coding_dist`` (one-hot or soft targets,
        float or int): the result is ``-sum(true_dist * log(coding_dist), axis=-1)``; or
        integer class indices of shape ``coding_dist.shape[:-1]``, values in
        ``[0, n_classes)``: the result is ``-log(coding_dist[..., true_dist])``.

    Returns
    -------
    tensor of shape ``coding_dist.shape[:-1]`` (``(batch,)`` for a matrix).
    """
    fname = "categorical_crossentropy"
    c = as_tensor(coding_dist, "coding_dist", fname)
    t = as_tensor(true_dist, "true_dist", fname)
    if c.ndim == 0:
        raise ValueError(f"{fname}: coding_dist must have a class axis; got a 0-d tensor")
    require_float(c, "coding_dist", fname)
    if t.ndim == c.ndim:
        t = check_same_shape(t, c, "true_dist", "coding_dist", fname)
        return -(t * _log_prob(c)).sum(axis=-1)
    if t.ndim != c.ndim - 1:
        raise ValueError(
            f"{fname}: true_dist must have the shape of coding_dist ({c.ndim}-d, a distribution) or "
            f"one axis less ({c.ndim - 1}-d, class indices); got a {t.ndim}-d tensor"
        )
    if not t.dtype.startswith(("int", "uint")):
        raise TypeError(
            f"{fname}: true_dist with one axis less than coding_dist holds class indices and must have "
            f"an integer dtype; got {t.dtype}"
        )
    if c.ndim == 2:
        return crossentropy_categorical_1hot(c, t)
    c2 = c.reshape((-1, c.shape[-1]))
    t1 = t.reshape((-1,))
    for i in range(t.ndim):
        eq = dims_equal(static_or_symbolic_shape(t, i), static_or_symbolic_shape(c, i))
        if eq is False:
            raise ValueError(f"{fname}: true_dist has shape {t.type.shape}, coding_dist {c.type.shape}")
        t1 = check_at_run_time(t1, eq, f"{fname}: true_dist must have the shape of coding_dist without its last axis")
    z = _softmax_input(c)
    if z is not None:
        logp = _pt_log_softmax(z, axis=-1).reshape((-1, c.shape[-1]))
        t1 = check_class_indices(t1, c2, "true_dist", "coding_dist", fname)
        return -_rows_pick(logp, t1).reshape(t.shape)
    return crossentropy_categorical_1hot(c2, t1).reshape(t.shape)


def binary_crossentropy(output, target):
    """``-(target * log(output) + (1 - target) * log(1 - output))`` elementwise.

    ``output``: probabilities in (0, 1), any shape; ``target``: same shape (or fewer axes /
    length-1 axes that broadcast to it). Returns ``output``'s shape. For logits use
    :func:`sigmoid_binary_crossentropy`, which is stable for large ``|logits|``.
    """
    fname = "binary_crossentropy"
    output, target = as_tensor(output, "output", fname), as_tensor(target, "target", fname)
    target = check_same_shape(target, output, "target", "output", fname)
    return -(target * pt.log(output) + (1.0 - target) * pt.log1p(-output))


def sigmoid_binary_crossentropy(output, target):
    """``binary_crossentropy(sigmoid(output), target)``, computed stably from the logits:
    ``softplus(output) - target * output``.

    ``output``: pre-sigmoid activations (logits), any shape; ``target``: same shape (or
    broadcastable to it). Returns ``output``'s shape.
    """
    fname = "sigmoid_binary_crossentropy"
    output, target = as_tensor(output, "output", fname), as_tensor(target, "target", fname)
    target = check_same_shape(target, output, "target", "output", fname)
    return softplus(output) - target * output


# ----------------------------------------------------------------------------- hierarchical softmax
def h_softmax(x, batch_size, n_outputs, n_classes, n_outputs_per_class, W1, b1, W2, b2, target=None):
    """Two-level hierarchical softmax (Morin & Bengio, 2005).

    The ``n_outputs`` outputs are split into ``n_classes`` classes of ``n_outputs_per_class``
    consecutive outputs: ``p(output) = p(class | x) * p(output | class, x)``, each level a
    softmax.

    Parameters
    ----------
    x : float matrix (batch_size, n_features)
    batch_size : int or int scalar, ``x.shape[0]``
    n_outputs : int, at most ``n_classes * n_outputs_per_class``
    n_classes, n_outputs_per_class : int
    W1 : (n_features, n_classes), b1 : (n_classes,)
        First level (class) weights and biases.
    W2 : (n_classes, n_features, n_outputs_per_class), b2 : (n_classes, n_outputs_per_class)
        Second level weights and biases, one block per class.
    target : int tensor (batch_size,) or (batch_size, 1), optional
        Output indices in ``[0, n_outputs)``.

    Returns
    -------
    (batch_size, n_outputs) probabilities of every output if ``target`` is None, else
    (batch_size,) the probability of each row's target (only the target's class block of
    ``W2`` is used: cheap for training).
    """
    fname = "h_softmax"
    x = as_tensor(x, "x", fname)
    require_ndim(x, 2, "x", fname, "a matrix (batch_size, n_features)")
    require_float(x, "x", fname)
    W1, b1 = as_tensor(W1, "W1", fname), as_tensor(b1, "b1", fname)
    W2, b2 = as_tensor(W2, "W2", fname), as_tensor(b2, "b2", fname)
    for v, name, nd, what in [
        (W1, "W1", 2, "(n_features, n_classes)"),
        (b1, "b1", 1, "(n_classes,)"),
        (W2, "W2", 3, "(n_classes, n_features, n_outputs_per_class)"),
        (b2, "b2", 2, "(n_classes, n_outputs_per_class)"),
    ]:
        require_ndim(v, nd, name, fname, f"{nd}-d {what}")
    ints = {"n_outputs": n_outputs, "n_classes": n_classes, "n_outputs_per_class": n_outputs_per_class}
    for name, v in ints.items():
        if not isinstance(v, int | np.integer) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{fname}: {name} must be a positive int; got {v!r}")
    if n_outputs > n_classes * n_outputs_per_class:
        raise ValueError(
            f"{fname}: n_outputs ({n_outputs}) must be at most n_classes * n_outputs_per_class "
            f"({n_classes} * {n_outputs_per_class})"
        )
    batch_size = as_tensor(batch_size, "batch_size", fname)
    x = check_at_run_time(x, pt.eq(x.shape[0], batch_size), f"{fname}: batch_size must be x.shape[0]")
    class_probs = _pt_softmax(pt.dot(x, W1) + b1, axis=-1)  # (batch, n_classes)
    if target is None:
        act = pt.tensordot(x, W2, axes=[[1], [1]]) + b2  # (batch, n_classes, n_outputs_per_class)
        probs = _pt_softmax(act, axis=-1) * class_probs[:, :, None]
        return probs.reshape((x.shape[0], n_classes * n_outputs_per_class))[:, :n_outputs]
    target = as_tensor(target, "target", fname)
    require_int(target, "target", fname)
    if target.ndim == 2 and target.type.shape[1] not in (1, None):
        raise ValueError(f"{fname}: target must be (batch_size,) or (batch_size, 1); got shape {target.type.shape}")
    require_ndim(target, (1, 2), "target", fname, "(batch_size,) or (batch_size, 1)")
    if target.ndim == 2:
        target = check_at_run_time(target, pt.eq(target.shape[1], 1), f"{fname}: target must have one column")
        target = target.reshape((-1,))
    target = check_class_indices(target, x, "target", "x", fname, n_classes=n_outputs)
    cls = target // n_outputs_per_class
    out_in_cls = target % n_outputs_per_class
    W2_t, b2_t = W2[cls], b2[cls]  # (batch, n_features, n_opc), (batch, n_opc)
    act = (x[:, :, None] * W2_t).sum(axis=1) + b2_t
    return _rows_pick(class_probs, cls) * _rows_pick(_pt_softmax(act, axis=-1), out_in_cls)


# ----------------------------------------------------------------------------- utilities
def confusion_matrix(actual, pred):
    """Confusion matrix of two label vectors.

    ``actual``, ``pred``: 1-d tensors of the same length (any dtype). Returns
    ``[conf_mat, order]``: ``order`` the sorted distinct labels of both vectors (their common
    dtype), ``conf_mat`` int64 (len(order), len(order)) with ``conf_mat[i, j]`` the number of
    entries whose actual label is ``order[i]`` and predicted label ``order[j]``.
    """
    fname = "confusion_matrix"
    actual, pred = as_tensor(actual, "actual", fname), as_tensor(pred, "pred", fname)
    require_ndim(actual, 1, "actual", fname, "a vector")
    require_ndim(pred, 1, "pred", fname, "a vector")
    pred = check_same_shape(pred, actual, "pred", "actual", fname)
    order = pt.unique(pt.concatenate([actual, pred]))
    one_hot_a = pt.eq(actual[:, None], order[None, :]).astype("int64")
    one_hot_p = pt.eq(pred[:, None], order[None, :]).astype("int64")
    return [pt.dot(one_hot_a.T, one_hot_p), order]


def prepend_scalar_to_each_row(val, mat):
    """``mat`` with a first column of ``val``: (rows, cols) -> (rows, cols + 1), dtype of ``mat``.

    ``val``: a scalar (Python number or 0-d tensor), cast to ``mat``'s dtype as in the
    legacy Op; ``mat``: a matrix.
    """
    fname = "prepend_scalar_to_each_row"
    mat = as_tensor(mat, "mat", fname)
    require_ndim(mat, 2, "mat", fname, "a matrix")
    val = as_tensor(val, "val", fname)
    require_ndim(val, 0, "val", fname, "a scalar")
    col = pt.alloc(pt.cast(val, mat.dtype), mat.shape[0], 1)
    return pt.concatenate([col, mat], axis=1)


def prepend_0_to_each_row(mat):
    """``mat`` (rows, cols) with a first column of zeros -> (rows, cols + 1)."""
    return prepend_scalar_to_each_row(0, mat)


def prepend_1_to_each_row(mat):
    """``mat`` (rows, cols) with a first column of ones -> (rows, cols + 1)."""
    return prepend_scalar_to_each_row(1, mat)
