import numpy as np
from pytensor.tensor.basic import *  # noqa: F401,F403
from pytensor.tensor.basic import get_scalar_constant_value  # noqa: F401
from pytensor.tensor.exceptions import NotScalarConstantError  # noqa: F401


def _allclose(a, b, rtol=None, atol=None):
    """The legacy dtype-aware ``allclose``: float32 tolerances when either side is float32."""
    narrow = "float32" in (str(np.asarray(a).dtype), str(np.asarray(b).dtype))
    atol_ = 1e-5 if narrow else 1e-8
    rtol_ = 1e-3 if narrow else 1e-5
    return np.allclose(a, b, atol=atol_ if atol is None else atol, rtol=rtol_ if rtol is None else rtol)
