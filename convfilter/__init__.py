"""convfilter: filter images with a real Keras ``Conv2D`` layer.

The package imports no TensorFlow at import time; TensorFlow is loaded the
first time a model actually runs (see :mod:`convfilter.engine.model`).
"""

import sys

from convfilter.engine.conv import filter_array
from convfilter.engine.pool import pool_array
from convfilter.errors import ArgumentError, ConvFilterError, ImageTooSmallError
from convfilter.io import matrices as _matrices
from convfilter.io.matrices import read_matrix, write_matrix
from convfilter.ops import kernelspec as _kernelspec
from convfilter.ops.kernelspec import parse_kernel
from convfilter.ops.spec import ChainSpec, Conv2DSpec, PoolSpec
from convfilter.run.single import chain_file, filter_file, pool_file

__version__ = "0.1.0"

# Module paths the README documented before the code moved into subpackages keep working.
sys.modules.update(
    {
        "convfilter.kernelspec": _kernelspec,
        "convfilter.matrixio": _matrices,
        "convfilter.pooling": sys.modules["convfilter.engine.pool"],
    }
)

__all__ = [
    "ArgumentError",
    "ChainSpec",
    "Conv2DSpec",
    "ConvFilterError",
    "ImageTooSmallError",
    "PoolSpec",
    "__version__",
    "chain_file",
    "filter_array",
    "filter_file",
    "parse_kernel",
    "pool_array",
    "pool_file",
    "read_matrix",
    "write_matrix",
]
