"""Framework-free numeric kernels (numpy + Numba, no PyTensor import).

Every kernel is one N-d implementation: 1-d and 2-d problems are run as 3-d problems whose
leading spatial axes have size 1 (a free reshape), so there is a single compiled loop nest.
"""
