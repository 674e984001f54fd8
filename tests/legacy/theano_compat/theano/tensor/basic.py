from pytensor.tensor.basic import *  # noqa: F401,F403
from pytensor.tensor.basic import get_scalar_constant_value  # noqa: F401
from pytensor.tensor.exceptions import NotScalarConstantError  # noqa: F401
from pytensor.tensor.math import _allclose  # noqa: F401
