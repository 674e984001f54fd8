"""The Bayesian twin: a small CNN whose weights are random variables in PyMC.

Same building blocks as the LeNet (``conv2d`` with shape hints, ``pool_2d``, tanh, row-wise
softmax), fewer weights so that inference is quick::

    x (n, 1, 28, 28) -> conv 5x5, F filters -> (n, F, 24, 24) -> max-pool 4x4 -> tanh
      -> (n, F * 36) -> dense 10 -> logits; label ~ Categorical(logit_p=logits)

Priors are independent normals. ``fit`` runs mean-field ADVI (``pm.fit``) on mini-batches
(``pm.Minibatch``, scaled to the whole training set by ``total_size``) and draws from the
approximation, or NUTS (``pm.sample``) on the whole (smaller) training set. Predictions are
the posterior predictive class probabilities: the softmax averaged over posterior draws,
computed by ``pm.sample_posterior_predictive`` in a model over the test images.
"""

from __future__ import annotations

import time

import numpy as np
import pytensor
import pytensor.tensor as pt

from pytensor_nnet import conv2d
from pytensor_nnet.nnet import softmax
from pytensor_nnet.pool import pool_2d

KERNEL = 5
POOL = 4
IMAGE = (1, 28, 28)
CLASSES = 10
WEIGHTS = ("W1", "b1", "W2", "b2")


def hidden_size(n_filters):
    side = (IMAGE[1] - KERNEL + 1) // POOL
    return n_filters * side * side


def logits(x, W1, b1, W2, b2, n_filters):
    """Logits ``(n, 10)`` of images ``x (n, 1, 28, 28)``: conv, max-pool 4x4, tanh, dense."""
    conv = conv2d(x, W1, input_shape=(None, *IMAGE), filter_shape=(n_filters, IMAGE[0], KERNEL, KERNEL))
    h = pt.tanh(pool_2d(conv, ws=(POOL, POOL), ignore_border=True) + b1.dimshuffle("x", 0, "x", "x"))
    return pt.dot(h.flatten(2), W2) + b2


def build_model(x, y, n_filters, batch_size=None, predictive=False):
    """The PyMC model of labels ``y (n,)`` given images ``x (n, 1, 28, 28)``.

    ``batch_size``: the likelihood sees random mini-batches of that size (``pm.Minibatch``),
    scaled by ``total_size = n`` (for ADVI). ``predictive=True`` adds the deterministic
    ``probs (n, 10)`` (the softmax of the logits) for posterior predictive checks.
    """
    import pymc as pm
    from pymc.pytensorf import floatX, intX

    # PyMC casts observed data to these dtypes; a cast after pm.Minibatch would not be data.
    x, y = floatX(np.asarray(x)), intX(np.asarray(y))
    with pm.Model() as model:
        if batch_size is not None and batch_size < len(y):
            x_in, y_in = pm.Minibatch(x, y, batch_size=batch_size)
            total_size = len(y)
        else:
            x_in, y_in = pm.Data("x", x), pm.Data("y", y)
            total_size = None
        W1 = pm.Normal("W1", 0.0, 1.0, shape=(n_filters, IMAGE[0], KERNEL, KERNEL))
        b1 = pm.Normal("b1", 0.0, 1.0, shape=n_filters)
        W2 = pm.Normal("W2", 0.0, 0.5, shape=(hidden_size(n_filters), CLASSES))
        b2 = pm.Normal("b2", 0.0, 1.0, shape=CLASSES)
        z = logits(x_in, W1, b1, W2, b2, n_filters)
        if predictive:
            pm.Deterministic("probs", softmax(z))
        pm.Categorical("label", logit_p=z, observed=y_in, total_size=total_size)
    return model


def fit(x, y, n_filters, nuts=False, steps=None, draws=None, batch_size=128, seed=0, progressbar=True):
    """Posterior draws of the weights (an InferenceData/DataTree with a ``posterior`` group).

    ADVI (default): ``steps`` iterations (default 5000) of ``pm.fit(method="advi")`` (Adam,
    learning rate 0.01) on mini-batches of ``batch_size``, then ``draws`` (default 300) draws of
    the approximation. NUTS: ``steps`` tuning steps (default 100) and ``draws`` draws (default
    50) in each of 2 chains (tree depth at most 6), on all of ``x`` at once.
    Returns ``(trace, elbo_loss_history_or_None, seconds)``.
    """
    import pymc as pm

    tic = time.perf_counter()
    if nuts:
        model = build_model(x, y, n_filters)
        with model:
            trace = pm.sample(
                draws=draws or 50,
                tune=steps or 100,
                chains=2,
                cores=1,
                step=pm.NUTS(max_treedepth=6, target_accept=0.9),
                random_seed=seed,
                progressbar=progressbar,
                compute_convergence_checks=False,
            )
        history = None
    else:
        model = build_model(x, y, n_filters, batch_size=batch_size)
        with model:
            approx = pm.fit(
                n=steps or 5000,
                method="advi",
                random_seed=seed,
                progressbar=progressbar,
                obj_optimizer=pm.adam(learning_rate=0.01),
            )
        trace = approx.sample(draws or 300, random_seed=seed)
        history = np.asarray(approx.hist)
    return trace, history, time.perf_counter() - tic


def predictive_probs(trace, x, y, n_filters, seed=0):
    """Posterior predictive class probabilities ``(n, 10)`` of images ``x`` (mean over draws)."""
    import pymc as pm

    model = build_model(x, y, n_filters, predictive=True)
    ppc = pm.sample_posterior_predictive(trace, model=model, var_names=["probs"], random_seed=seed, progressbar=False)
    probs = np.asarray(ppc.posterior_predictive["probs"])
    return probs.reshape(-1, len(x), CLASSES).mean(axis=0)


def run_bayes(args, console):
    """``python -m pytensor_nnet demo --bayes``: fit, report the accuracy, write the PNG of doubts."""
    from pytensor_nnet.demo import data as digits_data
    from pytensor_nnet.demo.cli import output_path
    from pytensor_nnet.demo.report import uncertainty_report

    out = output_path(args.out, "demo_bayes.png")
    n_train = args.n_train if args.n_train is not None else (200 if args.nuts else None)
    data = digits_data.load(n_train=n_train, dtype=args.dtype)
    n_filters = args.filters or 6
    method = "NUTS" if args.nuts else "ADVI"
    console.print(
        f"[bold]Bayesian CNN on handwritten digits[/] ({n_filters} filters 5x5, max-pool 4x4, "
        f"tanh, dense 10) with {method}: {len(data.y_train)} training, {len(data.y_test)} test "
        f"images; {args.dtype}, seed {args.seed}"
    )
    with pytensor.config.change_flags(floatX=args.dtype):
        trace, history, seconds = fit(
            data.x_train,
            data.y_train,
            n_filters,
            nuts=args.nuts,
            steps=args.steps,
            draws=args.draws,
            batch_size=128,
            seed=args.seed,
            progressbar=not args.quiet,
        )
        probs = predictive_probs(trace, data.x_test, data.y_test, n_filters, seed=args.seed)
    accuracy = float(np.mean(probs.argmax(axis=1) == data.y_test))
    confidence = probs.max(axis=1)
    title = (
        f"Bayesian CNN ({n_filters} filters, {method}): test accuracy {100 * accuracy:.1f}%; "
        f"the test digits it is least sure about, with their posterior predictive distributions"
    )
    uncertainty_report(out, data.x_test, data.y_test, probs, title)
    right = probs.argmax(axis=1) == data.y_test
    console.print(f"test accuracy   {100 * accuracy:.1f}% ({int(right.sum())}/{len(data.y_test)})")
    console.print(
        f"mean top probability  {confidence[right].mean():.2f} when right, "
        f"{confidence[~right].mean() if (~right).any() else float('nan'):.2f} when wrong"
    )
    console.print(f"{method} time       {seconds:.1f} s")
    console.print(f"picture         {out}")
    return {"test_accuracy": accuracy, "probs": probs, "seconds": seconds, "out": out, "history": history}
