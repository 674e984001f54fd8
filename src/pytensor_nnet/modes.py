"""Compile modes of our own, opt-in: nothing here changes PyTensor's modes or torch's settings.

:func:`pytorch_mode` is PyTensor's ``PYTORCH`` mode whose ``torch.compile`` call receives
TorchInductor options for the functions compiled with it, and only for them. Its default turns
off Inductor's layout optimisation: in a graph with convolutions Inductor converts inputs and
outputs between NCHW and channels-last around the cuDNN calls, and for the convolution sizes of
``benchmarks/bench_gpu.py`` those conversions cost more than they save (on an H200, conv2d
forward + backward went from 1.1-2.0x the raw ``torch.nn.functional.conv2d`` + autograd time
to 0.7-1.1x; see ``docs/backends.md``).

Importing this module does not import torch.
"""

from __future__ import annotations

from pytensor.compile.mode import Mode, get_mode
from pytensor.link.pytorch.linker import PytorchLinker

__all__ = ["pytorch_mode", "PytorchOptionsLinker"]


class PytorchOptionsLinker(PytorchLinker):
    """PyTensor's PyTorch linker, passing ``compile_options`` to ``torch.compile``
    (``torch.compile(fn, options=compile_options)``: Inductor settings for this function only)."""

    def __init__(self, *args, compile_options=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.compile_options = dict(compile_options or {})

    def accept(self, fgraph, no_recycling=None, profile=None):
        if self.fgraph is not None and self.fgraph is not fgraph:
            fresh = type(self)(allow_gc=self.allow_gc, compile_options=self.compile_options)
            return fresh.accept(fgraph, no_recycling, profile)
        return super().accept(fgraph, no_recycling, profile)

    def jit_compile(self, fn):
        import torch

        compiled = super().jit_compile(fn)
        if not hasattr(compiled, "fn"):  # PyTensor's wrapper keeps the compiled function as ``fn``
            raise RuntimeError("this PyTensor release's PyTorch linker has no `fn` to recompile with options")
        # ``torch.compile`` is lazy: nothing was compiled yet, so replacing it costs nothing
        compiled.fn = torch.compile(fn, options=self.compile_options)
        return compiled


def pytorch_mode(*, layout_optimization: bool = False, cudagraphs: bool = False, **inductor_options) -> Mode:
    """PyTensor's ``PYTORCH`` mode with TorchInductor options for its compiled functions.

    Parameters
    ----------
    layout_optimization : bool
        Inductor's conversion of convolution graphs to channels-last. Off by default: the
        tensors stay NCHW as PyTensor and the raw torch calls keep them.
    cudagraphs : bool
        Replay CUDA graphs (what ``torch.compile(mode="reduce-overhead")`` does): removes the
        per-call launch overhead on GPUs when the shapes do not change between calls.
    **inductor_options
        Any other ``torch._inductor.config`` setting, by its dotted name.

    Use it as ``pytensor.function(inputs, outputs, mode=pytorch_mode())``.
    """
    options = {"layout_optimization": bool(layout_optimization), "triton.cudagraphs": bool(cudagraphs)}
    options.update(inductor_options)
    base = get_mode("PYTORCH")
    return Mode(linker=PytorchOptionsLinker(compile_options=options), optimizer=base.provided_optimizer)
