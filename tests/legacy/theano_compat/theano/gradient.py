from pytensor.gradient import *  # noqa: F401,F403
from pytensor.gradient import grad, verify_grad  # noqa: F401
