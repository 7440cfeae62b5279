"""convfilter: filter images with a real Keras ``Conv2D`` layer.

The package imports no TensorFlow at import time; TensorFlow is loaded the
first time a model actually runs (see :mod:`convfilter.engine.model`).
"""

from convfilter.engine.conv import filter_array
from convfilter.errors import ConvFilterError, ImageTooSmallError

__version__ = "0.1.0"

__all__ = ["ConvFilterError", "ImageTooSmallError", "__version__", "filter_array"]
