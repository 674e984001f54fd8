from pytensor.scalar import *  # noqa: F401,F403
from pytensor.scalar import basic, upcast  # noqa: F401
