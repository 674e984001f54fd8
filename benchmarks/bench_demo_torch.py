"""The demo's LeNet in pytensor_nnet (Numba) and in PyTorch (CPU), time per epoch side by side.

Same data (scikit-learn's digits framed as 28x28, the demo's split), same network
(conv 5x5 x20 -> max-pool 2 -> tanh -> conv 5x5 x50 -> max-pool 2 -> tanh -> dense 500 tanh
-> dense 10, softmax cross-entropy), same initial weights (PyTorch gets the filters flipped:
its conv2d is a correlation, conv2d's default ``filter_flip=True`` a convolution), same
optimizer (SGD, momentum 0.9, lr 0.02, L2 1e-4 on the weights), same mini-batch order.
Both report the median seconds per epoch (training steps only) and the test accuracy.

    python benchmarks/bench_demo_torch.py [--epochs 12] [--torch-threads 2,1] [--blas-threads 1,2]

The machine may be shared: the 1-minute load average is printed beside each timing.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def load_average():
    return os.getloadavg()[0]


def ours(data, arch, init, args, threads):
    from threadpoolctl import threadpool_limits

    from pytensor_nnet.demo import lenet

    with threadpool_limits(threads, user_api="blas"):
        tic = time.perf_counter()
        net = lenet.compile_network(arch, init, dtype="float32")
        net.train(data.x_train[: args.batch_size], data.y_train[: args.batch_size], np.float32(0))
        net.predict(data.x_val)
        compile_s = time.perf_counter() - tic
        history = lenet.fit(net, data, args.epochs, args.batch_size, args.lr, np.random.default_rng(args.seed + 1))
        test_acc, _ = lenet.accuracy(net, data.x_test, data.y_test)
    return history.epoch_seconds, history.epoch_loss, test_acc, compile_s


def torch_peer(data, arch, init, args, threads):
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    W1, b1, W2, b2, W3, b3, W4, b4 = (torch.tensor(np.ascontiguousarray(p)) for p in init)
    W1, W2 = W1.flip(-1, -2).contiguous(), W2.flip(-1, -2).contiguous()  # convolution -> correlation
    params = [p.requires_grad_() for p in (W1, b1, W2, b2, W3, b3, W4, b4)]
    weights = params[0::2]
    opt = torch.optim.SGD(params, lr=args.lr, momentum=0.9)

    def logits(x):
        h = torch.tanh(F.max_pool2d(F.conv2d(x, params[0]), arch.pool) + params[1][None, :, None, None])
        h = torch.tanh(F.max_pool2d(F.conv2d(h, params[2]), arch.pool) + params[3][None, :, None, None])
        h = torch.tanh(h.flatten(1) @ params[4] + params[5])
        return h @ params[6] + params[7]

    x_train, y_train = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train.astype(np.int64))
    rng = np.random.default_rng(args.seed + 1)
    n = len(y_train)
    seconds, losses = [], []
    for _ in range(args.epochs):
        order = torch.from_numpy(rng.permutation(n))
        total, batch_losses, sizes = 0.0, [], []
        for start in range(0, n, args.batch_size):
            idx = order[start : start + args.batch_size]
            tic = time.perf_counter()
            opt.zero_grad()
            nll = F.cross_entropy(logits(x_train[idx]), y_train[idx])
            cost = nll + 1e-4 / 2 * sum((w**2).sum() for w in weights)
            cost.backward()
            opt.step()
            total += time.perf_counter() - tic
            batch_losses.append(float(nll.detach()))
            sizes.append(len(idx))
        seconds.append(total)
        losses.append(float(np.average(batch_losses, weights=sizes)))
    with torch.no_grad():
        test_acc = float((logits(torch.from_numpy(data.x_test)).argmax(1).numpy() == data.y_test).mean())
    return seconds, losses, test_acc


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--torch-threads", default="2,1", help="comma-separated thread counts (default 2,1)")
    parser.add_argument(
        "--blas-threads", default="1", help="our BLAS thread counts, comma-separated (default 1, the demo's default)"
    )
    args = parser.parse_args(argv)

    from pytensor_nnet.demo import data as digits_data
    from pytensor_nnet.demo import lenet

    data = digits_data.load()
    arch = lenet.Architecture()
    init = lenet.init_params(arch, np.random.default_rng(args.seed), "float32")

    rows = []
    for threads in (int(t) for t in args.blas_threads.split(",")):
        load_start = load_average()
        s, loss, acc, compile_s = ours(data, arch, init, args, threads)
        rows.append((f"pytensor_nnet NUMBA ({threads} BLAS thr)", s, loss, acc, (load_start + load_average()) / 2))
    our_s = rows[0][1]
    import torch

    for threads in (int(t) for t in args.torch_threads.split(",")):
        load_start = load_average()
        torch_s, torch_loss, torch_acc = torch_peer(data, arch, init, args, threads)
        rows.append(
            (
                f"PyTorch {torch.__version__} ({threads} thr)",
                torch_s,
                torch_loss,
                torch_acc,
                (load_start + load_average()) / 2,
            )
        )

    print(
        f"LeNet 20-50-500 tanh, {len(data.y_train)} images of 28x28 per epoch, batch {args.batch_size}, "
        f"{args.epochs} epochs, float32"
    )
    print(f"{'':32s}{'s/epoch (median)':>18s}{'images/s':>10s}{'test acc':>10s}{'final loss':>12s}{'load avg':>10s}")
    for name, s, loss, acc, load in rows:
        med = float(np.median(s))
        ratio = med / np.median(our_s)
        print(
            f"{name:32s}{med:18.3f}{len(data.y_train) / med:10.0f}{100 * acc:9.1f}%{loss[-1]:12.4f}{load:10.2f}"
            f"{ratio:8.2f}x"
        )
    print(
        f"last column: seconds per epoch / the first row (above 1: slower); our compile + first calls {compile_s:.1f} s"
    )
    for name, _, loss, _, _ in rows:
        print(f"per-epoch losses, {name.split(' (')[0]:20s}", " ".join(f"{v:.4f}" for v in loss))


if __name__ == "__main__":
    main()
