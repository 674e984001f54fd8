"""``six.moves.builtins``: the ``builtins`` module itself."""

import builtins
import sys

sys.modules[__name__] = builtins
