"""Slow references for the sparse-matrix convolution and pooling, from the definitions: legacy
image shapes (channels first, or one channel), zero padding for "full", explicit loops."""

import itertools

import numpy as np


def split_shape(imgshp, kshp):
    """(channels, spatial shape) of a legacy image shape."""
    if len(imgshp) == len(kshp):
        return 1, tuple(imgshp)
    return imgshp[0], tuple(imgshp[1:])


def padded_image(image, imgshp, kshp, mode):
    channels, in_sp = split_shape(imgshp, kshp)
    img = np.asarray(image).reshape((channels, *in_sp))
    pad = [(k - 1, k - 1) if mode == "full" else (0, 0) for k in kshp]
    return np.pad(img, [(0, 0), *pad])


def output_positions(padded, kshp, strides):
    return list(itertools.product(*(range(0, n - k + 1, s) for n, k, s in zip(padded.shape[1:], kshp, strides))))


def patches_reference(image, imgshp, kshp, strides, mode):
    """Patch stack (outsize, C * prod(kshp)) by slicing a zero-padded image."""
    padded = padded_image(image, imgshp, kshp, mode)
    rows = []
    for start in output_positions(padded, kshp, strides):
        window = padded[(slice(None), *(slice(s, s + k) for s, k in zip(start, kshp)))]
        rows.append(window.ravel())
    return np.array(rows)


def correlate_reference(images, kerns, imgshp, kshp, strides, mode):
    """(batch, nkern, outsize): sum over channels and taps, no kernel flip, explicit loops."""
    channels, _ = split_shape(imgshp, kshp)
    kerns = np.asarray(kerns).reshape((len(kerns), channels, *kshp))
    out = []
    for image in images:
        padded = padded_image(image, imgshp, kshp, mode)
        starts = output_positions(padded, kshp, strides)
        maps = np.zeros((len(kerns), len(starts)))
        for n, o, c in itertools.product(range(len(kerns)), range(len(starts)), range(channels)):
            for offset in itertools.product(*(range(k) for k in kshp)):
                pixel = tuple(s + d for s, d in zip(starts[o], offset))
                maps[n, o] += padded[(c, *pixel)] * kerns[(n, c, *offset)]
        out.append(maps)
    return np.array(out)


def local_reference(images, weights, imgshp, kshp, strides, mode, nkern):
    """Sparse local connections: unit (n, o) has its own weights[n, o, :]."""
    out = []
    for image in images:
        patches = patches_reference(image, imgshp, kshp, strides, mode)
        w = np.asarray(weights).reshape((nkern, *patches.shape))
        out.append(np.einsum("ot,not->no", patches, w).ravel())
    return np.array(out)


def block_max_reference(images, imgshp, pool):
    channels, in_sp = split_shape(imgshp, pool)
    out = []
    for image in images:
        img = image.reshape((channels, *in_sp))
        out_sp = [n // p for n, p in zip(in_sp, pool)]
        pooled = np.empty((channels, *out_sp))
        for c in range(channels):
            for pos in itertools.product(*(range(o) for o in out_sp)):
                window = tuple(slice(i * p, (i + 1) * p) for i, p in zip(pos, pool))
                pooled[(c, *pos)] = img[(c, *window)].max()
        out.append(pooled.ravel())
    return np.array(out)
