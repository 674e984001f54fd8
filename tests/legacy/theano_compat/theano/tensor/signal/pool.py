from pytensor_nnet.pool import *  # noqa: F401,F403
from pytensor_nnet.pool import (  # noqa: F401
    AveragePoolGrad,
    DownsampleFactorMaxGradGrad,
    MaxPoolGrad,
    Pool,
    max_pool_2d_same_size,
    pool_2d,
    pool_3d,
)
