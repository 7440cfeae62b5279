"""Old module path, kept working: ``convfilter.kernelspec`` is :mod:`convfilter.io.kernelspec`."""

import sys

from convfilter.io import kernelspec as _real

sys.modules[__name__] = _real
