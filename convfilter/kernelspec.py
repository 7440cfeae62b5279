"""Old module path, kept working: ``convfilter.kernelspec`` is :mod:`convfilter.ops.kernelspec`."""

import sys

from convfilter.ops import kernelspec as _real

sys.modules[__name__] = _real
