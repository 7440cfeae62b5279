"""Old module path, kept working: ``convfilter.matrixio`` is :mod:`convfilter.io.matrices`."""

import sys

from convfilter.io import matrices as _real

sys.modules[__name__] = _real
