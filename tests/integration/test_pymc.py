"""A small Bayesian CNN in PyMC: conv2d -> tanh -> max pool_2d -> dense -> Bernoulli.

The images are ``pm.Data`` (symbolic shapes) with many exact zeros, so max-pooling ties are
everywhere: the sampler only works if the gradient is a true gradient there.
"""

import warnings

import numpy as np
import pytest

pm = pytest.importorskip("pymc")

import pytensor.tensor as pt  # noqa: E402

from pytensor_nnet import conv2d  # noqa: E402
from pytensor_nnet.pool import pool_2d  # noqa: E402
from tests.backends import PY_FAST_RUN  # noqa: E402

N_FILTERS = 3


def bar_images(n, rng):
    """8x8 images of a horizontal (label 0) or vertical (label 1) bar, on exact zeros."""
    images = np.zeros((n, 1, 8, 8))
    labels = rng.integers(0, 2, n)
    for image, label, where, start in zip(images, labels, rng.integers(1, 7, n), rng.integers(0, 3, n)):
        bar = slice(start, start + 5)
        if label:
            image[0, bar, where] = 1.0
        else:
            image[0, where, bar] = 1.0
    images += (rng.random(images.shape) < 0.05) * rng.random(images.shape)  # sparse noise
    return images, labels


def cnn_model(images, labels):
    with pm.Model() as model:
        x = pm.Data("x", images)
        y = pm.Data("y", labels)
        w = pm.Normal("w", 0, 1, shape=(N_FILTERS, 1, 3, 3))
        b = pm.Normal("b", 0, 1, shape=(N_FILTERS,))
        v = pm.Normal("v", 0, 1, shape=(N_FILTERS * 3 * 3,))
        c = pm.Normal("c", 0, 1)
        h = pt.tanh(conv2d(x, w, filter_shape=(N_FILTERS, 1, 3, 3)) + b[None, :, None, None])
        pooled = pool_2d(h, ws=(2, 2), ignore_border=True, mode="max")
        logit = pooled.flatten(2) @ v + c
        pm.Bernoulli("obs", logit_p=logit, observed=y, shape=x.shape[0])
    return model


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    train = bar_images(120, rng)
    test = bar_images(200, rng)
    return train, test


def accuracy(model, trace_or_approx, test):
    images, labels = test
    with model:
        pm.set_data({"x": images, "y": np.zeros_like(labels)})
        pred = pm.sample_posterior_predictive(trace_or_approx, var_names=["obs"], progressbar=False, random_seed=1)
    p = pred.posterior_predictive["obs"].mean(("chain", "draw")).values
    return np.mean((p > 0.5) == labels)


@pytest.mark.parametrize("mode", [pytest.param("NUMBA", marks=pytest.mark.slow), "JAX"])
def test_logp_and_gradient_compile_without_object_mode(data, mode):
    if mode == "JAX":
        pytest.importorskip("jax")
    model = cnn_model(*data[0])
    point = model.initial_point()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # object-mode fallback warns
        logp = model.compile_logp(mode=mode)
        dlogp = model.compile_dlogp(mode=mode)
        reference = model.compile_dlogp(mode=PY_FAST_RUN)
    assert np.isfinite(logp(point))
    np.testing.assert_allclose(dlogp(point), reference(point), rtol=1e-6, atol=1e-8)


@pytest.mark.slow
def test_nuts_samples_and_predicts(data):
    train, test = data
    model = cnn_model(*train)
    with model:
        trace = pm.sample(
            draws=150, tune=150, chains=1, cores=1, random_seed=2, progressbar=False, compute_convergence_checks=False
        )
    assert trace.sample_stats["diverging"].values.mean() < 0.2
    assert accuracy(model, trace, test) > 0.8


def test_advi_fits_and_predicts(data):
    train, test = data
    model = cnn_model(*train)
    with model:
        approx = pm.fit(
            n=3000, method="advi", random_seed=3, progressbar=False, obj_optimizer=pm.adam(learning_rate=0.02)
        )
    assert accuracy(model, approx.sample(100, random_seed=4), test) > 0.8
