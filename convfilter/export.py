"""``--export MODEL.keras``: saving the model that produced an output, in Keras's native format.

The saved model is built by :func:`convfilter.engine.stack.build_stack` from the
same stages, with the same weights, so ``keras.saving.load_model(path)``
gives a model that maps an ``N x H x W x 1`` float32 batch (pixel values in
the input's scale, 0..255 for 8-bit images) to exactly the raw values that
were mapped to OUTPUT's pixels. Its ``Conv2D`` layer is named ``conv`` for a
single filter and ``stageN_<name>`` in a chain. Nothing custom is saved, so
no ``custom_objects`` are needed to load it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from convfilter.errors import ConvFilterError
from convfilter.io.atomic import atomic_path
from convfilter.io.images import check_writable

MODEL_EXTENSION = ".keras"


def check_model_path(path: str) -> None:
    """Raise :class:`ConvFilterError` unless ``path`` ends in ``.keras`` and can be written."""
    ext = os.path.splitext(path)[1].lower()
    if ext != MODEL_EXTENSION:
        shown = repr(ext) if ext else "no extension"
        raise ConvFilterError(f"{path}: a model is saved in Keras's native format; use .keras, not {shown}")
    check_writable(path)


def export_stack(path: str, stages: Sequence, input_shape: Sequence[int], *, replace: bool = True) -> None:
    """Build the model of ``stages`` (:mod:`convfilter.engine.stack`) and save it to ``path`` atomically
    (with ``replace=False`` never over a file that appeared meanwhile)."""
    from convfilter.engine.stack import build_stack

    model, _ = build_stack(stages, input_shape)
    save_model(model, path, replace=replace)


def save_model(model, path: str, *, replace: bool = True) -> None:
    """Save a Keras model to ``path`` (``.keras``) through a temporary file renamed into place."""
    with atomic_path(path, suffix=MODEL_EXTENSION, replace=replace) as tmp:
        model.save(tmp, overwrite=True)
