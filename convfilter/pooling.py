"""Old module path, kept working: ``convfilter.pooling`` is :mod:`convfilter.engine.pool`."""

import sys

from convfilter.engine import pool as _real

sys.modules[__name__] = _real
