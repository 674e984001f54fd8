"""Source fingerprints for Numba cache keys.

PyTensor's on-disk Numba cache returns the function compiled under a key even after the code
behind it changed, so every dispatch module puts a hash of its own source and of the kernels
it calls into its cache keys: the key follows the code.
"""

import hashlib
import inspect


def source_fingerprint(*modules) -> str:
    """Short hash of the source text of ``modules``."""
    digest = hashlib.sha256()
    for module in modules:
        digest.update(inspect.getsource(module).encode())
    return digest.hexdigest()[:16]
