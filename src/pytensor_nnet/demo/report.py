"""PNG reports (matplotlib, Agg backend): the trained network, and the Bayesian twin's doubts."""

from __future__ import annotations

import numpy as np

MISTAKE = "#d62728"
RIGHT = "#222222"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _digit(ax, image, title, color):
    ax.imshow(image, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title, color=color, fontsize=9, pad=2)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_color(color)
        spine.set_linewidth(2 if color == MISTAKE else 0.5)


def pick_digits(y_true, y_pred, count):
    """Indices of ``count`` test digits to show: every mistake (up to ``count``), then the first right ones."""
    wrong = np.flatnonzero(y_true != y_pred)[:count]
    right = np.flatnonzero(y_true == y_pred)[: count - len(wrong)]
    return np.sort(np.concatenate([wrong, right]))


def mosaic(tiles, cols, pad=1, fill=np.nan):
    """Tiles ``(n, h, w)`` laid out row by row in ``cols`` columns, ``pad`` pixels of ``fill`` between them."""
    n, h, w = tiles.shape
    rows = -(-n // cols)
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad), fill, dtype=float)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        out[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = tile
    return out


def _digit_grid(ax, images, labels, wrong, cols):
    """Digits ``(n, 28, 28)`` in one image, a label above each, mistakes framed and labelled in red."""
    from matplotlib.patches import Rectangle

    n, h, w = images.shape
    gap = 11  # pixels above each digit for its label
    rows = -(-n // cols)
    canvas = np.zeros((rows * (h + gap), cols * (w + 2)))
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        top, left = r * (h + gap) + gap, c * (w + 2) + 1
        canvas[top : top + h, left : left + w] = image
        ax.text(
            left + w / 2, top - 2, labels[i], ha="center", va="bottom", fontsize=8, color=MISTAKE if wrong[i] else RIGHT
        )
        ax.add_patch(
            Rectangle(
                (left - 0.5, top - 0.5),
                w,
                h,
                fill=False,
                lw=2 if wrong[i] else 0.4,
                edgecolor=MISTAKE if wrong[i] else "#999999",
            )
        )
    ax.imshow(canvas, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.axis("off")


def training_report(path, history, filters, x_test, y_test, probs, title, grid=(6, 10)):
    """Write the training curves, the first-layer filters and labelled test digits to ``path``.

    ``history`` is a :class:`~pytensor_nnet.demo.lenet.History`, ``filters (F, 1, k, k)``,
    ``x_test (n, 1, 28, 28)``, ``probs (n, classes)``. Every mistake is shown (up to the grid's
    size), framed and labelled in red with the true class.
    """
    plt = _pyplot()
    fig = plt.figure(figsize=(13, 7.2), dpi=80)
    outer = fig.add_gridspec(
        2,
        2,
        width_ratios=[1, 1.55],
        height_ratios=[1, 1],
        wspace=0.2,
        hspace=0.3,
        left=0.075,
        right=0.98,
        top=0.88,
        bottom=0.04,
    )

    ax = fig.add_subplot(outer[0, 0])
    steps = np.arange(1, len(history.batch_loss) + 1)
    per_epoch = len(history.batch_loss) / max(len(history.epoch_loss), 1)
    ax.semilogy(steps / per_epoch, history.batch_loss, color="#9ecae1", lw=0.8, label="training loss (batch)")
    epochs = np.arange(1, len(history.epoch_loss) + 1)
    ax.semilogy(epochs, history.epoch_loss, "o-", color="#1f77b4", ms=3, label="training loss (epoch mean)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy")
    ax2 = ax.twinx()
    ax2.plot(epochs, 100 * np.asarray(history.val_accuracy), "s-", color="#2ca02c", ms=3, label="validation accuracy")
    ax2.set_ylabel("validation accuracy (%)")
    ax2.set_ylim(min(80, 100 * min(history.val_accuracy) - 2), 100.5)
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=8, loc="center right")
    ax.set_title("training curves", fontsize=10)

    axf = fig.add_subplot(outer[1, 0])
    w = filters[:, 0]
    w = w / np.maximum(np.abs(w).max(axis=(1, 2), keepdims=True), 1e-12)  # each filter on its own scale
    cols = int(np.ceil(np.sqrt(len(w) * 2.5)))
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="white")
    axf.imshow(mosaic(w, cols), cmap=cmap, vmin=-1, vmax=1, interpolation="nearest")
    axf.axis("off")
    axf.set_title(f"first-layer filters ({len(w)}, {w.shape[-2]}x{w.shape[-1]}; red +, blue -)", fontsize=10)

    y_pred = probs.argmax(axis=1)
    show = pick_digits(y_test, y_pred, grid[0] * grid[1])
    wrong = y_pred[show] != y_test[show]
    labels = [f"{p} (is {t})" if bad else f"{p}" for p, t, bad in zip(y_pred[show], y_test[show], wrong)]
    _digit_grid(fig.add_subplot(outer[:, 1]), x_test[show, 0], labels, wrong, grid[1])
    n_wrong = int(np.sum(y_pred != y_test))
    shown = "all shown in red" if n_wrong <= len(show) else f"the first {len(show)} shown in red"
    fig.text(
        0.66,
        0.905,
        f"test digits and predicted labels: {n_wrong} of {len(y_test)} wrong, {shown}",
        ha="center",
        fontsize=10,
    )
    fig.suptitle(title, y=0.985, fontsize=12)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def uncertainty_report(path, x_test, y_test, probs, title, count=12):
    """Write the ``count`` test digits with the most uncertain predictive distributions to ``path``.

    ``probs (n, classes)`` is the posterior predictive probability of each class (the mean of
    the softmax over posterior draws); uncertainty is its entropy. Each digit is shown above a
    bar chart of its predictive distribution, the true class in green, a wrong top class in red.
    """
    plt = _pyplot()
    entropy = -np.sum(probs * np.log(np.clip(probs, 1e-12, None)), axis=1)
    order = np.argsort(-entropy, kind="stable")[:count]
    cols = min(6, count)
    rows = int(np.ceil(count / cols))
    fig = plt.figure(figsize=(2.1 * cols, 2.9 * rows + 0.5), dpi=80)
    outer = fig.add_gridspec(rows, cols, wspace=0.35, hspace=0.3)
    classes = np.arange(probs.shape[1])
    for k, i in enumerate(order):
        cell = outer[k // cols, k % cols].subgridspec(2, 1, height_ratios=[1.2, 1], hspace=0.25)
        pred = probs[i].argmax()
        wrong = pred != y_test[i]
        _digit(fig.add_subplot(cell[0]), x_test[i, 0], f"true {y_test[i]}, top {pred}", MISTAKE if wrong else RIGHT)
        axb = fig.add_subplot(cell[1])
        colors = ["#2ca02c" if c == y_test[i] else (MISTAKE if c == pred else "#7f7f7f") for c in classes]
        axb.bar(classes, probs[i], color=colors)
        axb.set_ylim(0, 1)
        axb.set_xticks(classes)
        axb.tick_params(labelsize=7)
        axb.set_title(f"entropy {entropy[i]:.2f}", fontsize=8, pad=2)
    fig.suptitle(title, fontsize=11)
    fig.savefig(path, dpi=80)
    plt.close(fig)
