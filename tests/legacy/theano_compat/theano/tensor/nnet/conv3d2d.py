from pytensor_nnet.conv3d2d import conv3d  # noqa: F401
from theano._internal import legacy_internal

get_diagonal_subtensor_view = legacy_internal("conv3d2d.get_diagonal_subtensor_view")
DiagonalSubtensor = legacy_internal("conv3d2d.DiagonalSubtensor")
IncDiagonalSubtensor = legacy_internal("conv3d2d.IncDiagonalSubtensor")
