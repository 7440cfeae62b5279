"""convfilter: filter images with a real Keras ``Conv2D`` layer.

``import convfilter`` is cheap: it imports nothing but this file. The public
names below are loaded on first use (PEP 562), so the ``convfilter`` command's
forwarding client (:mod:`convfilter.server.client`) starts without NumPy,
Pillow, Click or TensorFlow; TensorFlow itself is loaded only when a model
runs (see :mod:`convfilter.engine.model`).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "ArgumentError": "convfilter.errors",
    "ChainSpec": "convfilter.ops.spec",
    "Conv2DSpec": "convfilter.ops.spec",
    "TransposeSpec": "convfilter.ops.transpose",
    "transpose_array": "convfilter.engine.transpose",
    "BankSpec": "convfilter.ops.bank",
    "bank_array": "convfilter.engine.bank",
    "ConvFilterError": "convfilter.errors",
    "ImageTooSmallError": "convfilter.errors",
    "PoolSpec": "convfilter.ops.spec",
    "chain_file": "convfilter.run.single",
    "filter_array": "convfilter.engine.conv",
    "filter_file": "convfilter.run.single",
    "parse_kernel": "convfilter.io.kernelspec",
    "pool_array": "convfilter.engine.pool",
    "pool_file": "convfilter.run.single",
    "read_matrix": "convfilter.io.matrices",
    "write_matrix": "convfilter.io.matrices",
}

__all__ = sorted([*_PUBLIC, "__version__"])


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'convfilter' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
