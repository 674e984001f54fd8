"""The demo's LeNet in pytensor_nnet (Numba) and in PyTorch (CPU), time per epoch side by side.

Same data (scikit-learn's digits framed as 28x28, the demo's split), same network
(conv 5x5 x20 -> max-pool 2 -> tanh -> conv 5x5 x50 -> max-pool 2 -> tanh -> dense 500 tanh
-> dense 10, softmax cross-entropy), same initial weights (PyTorch gets the filters flipped:
its conv2d is a correlation, conv2d's default ``filter_flip=True`` a convolution), same
optimizer (SGD, momentum 0.9, lr 0.02, L2 1e-4 on the weights), same mini-batch order.
Both report the median seconds per epoch (training steps only) and the test accuracy.

    python benchmarks/bench_demo_torch.py [--epochs 12] [--torch-threads 2] [--blas-threads 1]

The machine may be shared: the 1-minute load average is printed beside each timing.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def load_average():
    return os.getloadavg()[0]


def ours(data, arch, init, args):
    from threadpoolctl import threadpool_limits

    from pytensor_nnet.demo import lenet

    with threadpool_limits(args.blas_threads, user_api="blas"):
        tic = time.perf_counter()
        net = lenet.compile_network(arch, init, dtype="float32")
        net.train(data.x_train[: args.batch_size], data.y_train[: args.batch_size], np.float32(0))
        net.predict(data.x_val)
        compile_s = time.perf_counter() - tic
        history = lenet.fit(net, data, args.epochs, args.batch_size, args.lr, np.random.default_rng(args.seed + 1))
        test_acc, _ = lenet.accuracy(net, data.x_test, data.y_test)
    return history.epoch_seconds, history.epoch_loss, test_acc, compile_s


def torch_peer(data, arch, init, args):
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(args.torch_threads)
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
            idx = order[start:start + args.batch_size]
            tic = time.perf_counter()
            opt.zero_grad()
            nll = F.cross_entropy(logits(x_train[idx]), y_train[idx])
            cost = nll + 1e-4 / 2 * sum((w ** 2).sum() for w in weights)
            cost.backward()
            opt.step()
            total += time.perf_counter() - tic
            batch_losses.append(float(nll))
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
    parser.add_argument("--torch-threads", type=int, default=2)
    parser.add_argument("--blas-threads", type=int, default=1, help="our BLAS threads (the demo's default)")
    args = parser.parse_args(argv)

    from pytensor_nnet.demo import data as digits_data
    from pytensor_nnet.demo import lenet

    data = digits_data.load()
    arch = lenet.Architecture()
    init = lenet.init_params(arch, np.random.default_rng(args.seed), "float32")

    load_before = load_average()
    our_s, our_loss, our_acc, compile_s = ours(data, arch, init, args)
    load_mid = load_average()
    torch_s, torch_loss, torch_acc = torch_peer(data, arch, init, args)
    load_after = load_average()

    import torch

    print(f"LeNet 20-50-500 tanh, {len(data.y_train)} images of 28x28 per epoch, batch {args.batch_size}, "
          f"{args.epochs} epochs, float32")
    print(f"{'':32s}{'s/epoch (median)':>18s}{'images/s':>10s}{'test acc':>10s}{'final loss':>12s}{'load avg':>10s}")
    for name, s, loss, acc, load in (
        (f"pytensor_nnet NUMBA ({args.blas_threads} BLAS thr)", our_s, our_loss, our_acc, (load_before + load_mid) / 2),
        (f"PyTorch {torch.__version__} ({args.torch_threads} thr)", torch_s, torch_loss, torch_acc,
         (load_mid + load_after) / 2),
    ):
        med = float(np.median(s))
        print(f"{name:32s}{med:18.3f}{len(data.y_train) / med:10.0f}{100 * acc:9.1f}%{loss[-1]:12.4f}{load:10.2f}")
    print(f"ratio PyTorch / ours: {np.median(torch_s) / np.median(our_s):.2f} (above 1: we are faster); "
          f"our compile + first calls {compile_s:.1f} s")
    print("per-epoch losses, ours :", " ".join(f"{v:.4f}" for v in our_loss))
    print("per-epoch losses, torch:", " ".join(f"{v:.4f}" for v in torch_loss))


if __name__ == "__main__":
    main()
