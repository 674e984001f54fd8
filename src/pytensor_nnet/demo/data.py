"""Handwritten digits that ship with scikit-learn, framed like MNIST.

scikit-learn's ``load_digits`` holds 1,797 digits of 8x8 pixels with values 0..16 (each pixel
counts the set pixels of a 4x4 block of a 32x32 bitmap). MNIST digits were size-normalised
into a 20x20 box (aspect ratio kept, anti-aliased) and then centred by their centre of mass in
a 28x28 field. :func:`mnist_frame` does the same to the 8x8 digits: bilinear upscaling to
20x20 (the 8x8 box is already the digit's box), translation so that the centre of mass lands
at the centre of the 28x28 field, values scaled to [0, 1]. Nothing is downloaded.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

FIELD = 28  # side of the output image
BOX = 20  # side of the box the digit is scaled into
SPLIT_SEED = 0  # the train/validation/test split is the same for every run


@dataclass(frozen=True)
class Digits:
    """Images ``(n, 1, 28, 28)`` in [0, 1] and labels ``(n,)`` int32, per split."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    def astype(self, dtype):
        """The same digits with images of ``dtype``."""
        return Digits(
            self.x_train.astype(dtype),
            self.y_train,
            self.x_val.astype(dtype),
            self.y_val,
            self.x_test.astype(dtype),
            self.y_test,
        )


def mnist_frame(images, values_max=16.0):
    """Frame 8x8 digits like MNIST: ``(n, 8, 8)`` with values 0..values_max -> ``(n, 28, 28)`` float64.

    Each digit is upscaled to 20x20 by bilinear interpolation, placed in a 28x28 field so that
    its centre of mass is at the field's centre (13.5, 13.5) to the nearest pixel (the box is
    kept inside the field), and divided by ``values_max``.
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 3:
        raise ValueError(f"images must be (n, h, w); got shape {images.shape}")
    zoom = (1, BOX / images.shape[1], BOX / images.shape[2])
    boxes = np.clip(ndimage.zoom(images, zoom, order=1, grid_mode=True, mode="nearest"), 0, None)
    out = np.zeros((len(images), FIELD, FIELD))
    centre = (FIELD - 1) / 2
    for i, box in enumerate(boxes):
        cy, cx = ndimage.center_of_mass(box) if box.sum() > 0 else ((BOX - 1) / 2,) * 2
        top = int(np.clip(np.rint(centre - cy), 0, FIELD - BOX))
        left = int(np.clip(np.rint(centre - cx), 0, FIELD - BOX))
        out[i, top : top + BOX, left : left + BOX] = box
    return np.clip(out / values_max, 0.0, 1.0)


def stratified_split(labels, sizes, seed=SPLIT_SEED):
    """Indices of ``len(sizes)`` disjoint parts of sizes ``sizes``, each with the class mix of ``labels``.

    Every class is shuffled and dealt out in proportion to ``sizes`` (largest remainders), so
    the parts keep the class frequencies; each part's indices are shuffled.
    """
    labels = np.asarray(labels)
    sizes = np.asarray(sizes, dtype=np.int64)
    if sizes.sum() != len(labels):
        raise ValueError(f"sizes must add up to {len(labels)}; got {tuple(sizes)}")
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    # quota[c, p]: how many images of class c go to part p (rows sum to counts, columns to sizes)
    exact = np.outer(counts, sizes) / len(labels)
    quota = np.floor(exact).astype(np.int64)
    for p in range(len(sizes)):
        short = sizes[p] - quota[:, p].sum()
        need = counts - quota.sum(axis=1)
        order = [c for c in np.argsort(-(exact[:, p] - quota[:, p]), kind="stable") if need[c] > 0]
        for c in order[:short]:
            quota[c, p] += 1
    parts = [[] for _ in sizes]
    for c, cls in enumerate(classes):
        members = rng.permutation(np.flatnonzero(labels == cls))
        bounds = np.cumsum(quota[c])[:-1]
        for p, chunk in enumerate(np.split(members, bounds)):
            parts[p].append(chunk)
    return [rng.permutation(np.concatenate(part)) for part in parts]


@functools.lru_cache(maxsize=1)
def _framed_digits():
    """All 1,797 digits framed (read-only ``(n, 28, 28)`` float64) and their labels (int32)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images, labels = mnist_frame(digits.images), digits.target.astype(np.int32)
    images.flags.writeable = labels.flags.writeable = False
    return images, labels


def load(n_val=180, n_test=360, n_train=None, dtype="float32"):
    """scikit-learn's digits framed as 28x28 images, split into train/validation/test.

    ``n_train=None`` uses every image not in validation or test (1,257 by default); a smaller
    ``n_train`` takes a stratified subset of those (for quick runs). The split does not depend
    on the training seed.
    """
    framed, labels = _framed_digits()
    images = framed[:, None].astype(dtype)
    n_rest = len(labels) - n_val - n_test
    if n_val < 1 or n_test < 1 or n_rest < 10:
        raise ValueError(f"n_val={n_val} and n_test={n_test} leave {n_rest} of {len(labels)} images to train on")
    train, val, test = stratified_split(labels, [n_rest, n_val, n_test])
    if n_train is not None and n_train < n_rest:
        if n_train < 10:
            raise ValueError(f"n_train must be at least 10 (one image per class); got {n_train}")
        (keep, _) = stratified_split(labels[train], [n_train, n_rest - n_train], seed=SPLIT_SEED + 1)
        train = train[keep]
    return Digits(images[train], labels[train], images[val], labels[val], images[test], labels[test])
