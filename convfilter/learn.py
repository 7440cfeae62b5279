"""Learning a kernel back: train the single-filter Conv2D that turns BEFORE into AFTER.

The layer is the one filtering uses (same stride, padding and dilation,
built by :mod:`convfilter.engine.stack`), trained with Keras's ``model.fit``, the
Adam optimizer and a mean-squared-error loss, full batch: one epoch is one
gradient step over the whole image.

Why it converges in hundreds rather than hundreds of thousands of epochs:
neighbouring pixels of a photo are strongly correlated, which makes plain
least squares on raw pixels badly conditioned (condition numbers of 1e4..1e6
for 3x3..7x7 kernels on the sample image). The mean squared error is
therefore measured after a fixed, non-trainable high-pass layer (a 3x3
Laplacian plus 0.1 times the identity, so a bias stays visible) applied to
both the layer's output and AFTER. The minimum is the same kernel, since
the residual is zero exactly there, but the error surface is close to round
(condition numbers of 10..300). The error reported at the end is the plain
mean squared difference between the learned layer's output and AFTER.

Scales: an image's values are in its pixel scale (0..255 for 8-bit,
0..65535 for 16-bit, 0..1 for float images), a matrix file's values are used
as they are. When both files are images of different depths, AFTER is
converted to BEFORE's scale. The kernel is dimensionless; the bias is in
BEFORE's scale, like ``--bias`` of the filtering commands. Training itself
runs on values divided by BEFORE's largest magnitude, which changes neither
the kernel nor (once scaled back) the bias.

Learning from an 8-bit AFTER image is approximate: rounding, clipping and
``--range rescale`` (an affine map of the values) all change what the layer
has to reproduce. For exact recovery write AFTER with ``--range clip`` from
an averaging kernel, with ``--depth 16``, or as a matrix file.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from convfilter.engine.stack import add_stage
from convfilter.errors import ArgumentError, ConvFilterError
from convfilter.io.atomic import atomic_file
from convfilter.io.images import DEFAULT_MAX_PIXELS, check_writable
from convfilter.io.matrices import is_matrix_path
from convfilter.ops.borders import pad_batch
from convfilter.ops.geometry import padding_text, standardize_pair
from convfilter.ops.kernels import MAX_KERNEL_SIZE
from convfilter.ops.spec import ChainSpec, Conv2DSpec
from convfilter.run.files import read_input

DEFAULT_EPOCHS = 5000
DEFAULT_LEARNING_RATE = 0.02
STEPS_PER_CALL = 50
"""Epochs run inside one compiled Keras call (``steps_per_execution``); progress is reported per call."""
PATIENCE_CALLS = 10
"""Training stops early after this many calls without the loss improving by 1%."""
CONVERGED = 1e-11
"""Training stops early when the loss falls below this fraction of the target's mean square."""
IDENTITY_WEIGHT = 0.1
KERNEL_EXTENSIONS = (".csv", ".npy", ".txt")


@dataclass
class LearnResult:
    """What :func:`learn_kernel` found.

    ``kernel`` (float64) and ``bias`` (``None`` unless learned, in BEFORE's
    scale); ``error``: mean squared difference between the learned layer's
    output and AFTER, in BEFORE's scale; ``max_error``: the largest absolute
    difference; ``epochs``: epochs run, of at most ``max_epochs``;
    ``stopped_early``: the loss stopped improving (or reached float32's floor).
    """

    kernel: np.ndarray
    bias: float | None
    error: float
    max_error: float
    epochs: int
    max_epochs: int
    stopped_early: bool
    input_shape: tuple[int, int]
    output_shape: tuple[int, int]


def read_operand(
    path: str, channels: int = 1, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> tuple[np.ndarray, float | None]:
    """Read BEFORE or AFTER: an image (``values, max_value``) or a matrix file (``values, None``).

    Images follow the grayscale rule of :mod:`convfilter.io.modes`; matrix files
    (``.npy`` read with ``allow_pickle=False``, ``.csv``, ``.txt``) hold numbers
    used as they are. ``channels`` > 1 reads all C channels (``H x W x C``), as
    a kernel of shape ``(kh, kw, C, 1)`` does. Errors are :class:`ConvFilterError` naming ``path``.
    """
    data = read_input(path, channels=channels, max_pixels=max_pixels)
    values = data.channels.astype(np.float64)
    values = values[0] if channels == 1 else np.moveaxis(values, 0, -1)
    return values, None if is_matrix_path(path) else data.max_value


def read_pair(
    before_path: str, after_path: str, channels: int = 1, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> tuple[np.ndarray, np.ndarray]:
    """BEFORE and AFTER as float64 arrays, AFTER in BEFORE's scale (see the module's note on scales).

    A matrix file takes the scale of the other file when that is an image (a
    matrix made by filtering an image holds values in the image's scale).
    BEFORE has ``channels`` channels (``H x W x C`` when more than one).
    """
    before, before_scale = read_operand(before_path, channels, max_pixels)
    after, after_scale = read_operand(after_path, max_pixels=max_pixels)
    if before_scale is not None and after_scale is not None and before_scale != after_scale:
        after = after * (before_scale / after_scale)
    return before, after


def check_kernel_path(path: str) -> None:
    """Raise :class:`ConvFilterError` unless ``path`` is a writable ``.csv``, ``.npy`` or ``.txt``."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in KERNEL_EXTENSIONS:
        shown = repr(ext) if ext else "no extension"
        raise ConvFilterError(f"{path}: a kernel is saved as {', '.join(KERNEL_EXTENSIONS)}, not {shown}")
    check_writable(path)


def save_kernel(path: str, kernel: np.ndarray, *, replace: bool = True) -> None:
    """Write ``kernel`` atomically: ``.npy`` with ``np.save``; ``.csv``/``.txt`` as rows of numbers.

    Text files are what ``np.savetxt`` writes (comma- or space-separated,
    9 significant digits, enough for float32), one kernel row per line.
    """
    ext = os.path.splitext(path)[1].lower()
    grid = np.asarray(kernel, dtype=np.float64)
    with atomic_file(path, replace=replace) as handle:
        if ext == ".npy":
            np.save(handle, grid, allow_pickle=False)
        else:
            np.savetxt(handle, grid, fmt="%.9g", delimiter="," if ext == ".csv" else " ")


class PairError(ConvFilterError, ValueError):
    """BEFORE and AFTER cannot be learned from (their shapes do not fit, their values are not finite).

    A problem with the files (exit 1 on the command line), and a ``ValueError`` for library callers.
    """


def check_size(size: int | Sequence[int]) -> tuple[int, int]:
    """The kernel size as ``(rows, columns)``, each 1..``MAX_KERNEL_SIZE``, or ``ValueError``."""
    pair = standardize_pair(size, "size")
    if max(pair) > MAX_KERNEL_SIZE:
        raise ArgumentError(f"kernel size must be at most {MAX_KERNEL_SIZE}, got {pair[0]}x{pair[1]}")
    return pair


def learn_kernel(
    before: np.ndarray,
    after: np.ndarray,
    size: int | Sequence[int],
    *,
    stride: int | Sequence[int] = (1, 1),
    padding: str = "valid",
    dilation: int | Sequence[int] = (1, 1),
    border: str = "zero",
    learn_bias: bool = False,
    epochs: int = DEFAULT_EPOCHS,
    learning_rate: float = DEFAULT_LEARNING_RATE,
    seed: int = 0,
    progress: Callable[[int, int, float], None] | None = None,
) -> LearnResult:
    """Train a single-filter ``Conv2D`` so that it maps ``before`` onto ``after``; return what it learned.

    ``before`` is ``H x W`` or ``H x W x C`` (then the kernel learned is
    ``(kh, kw, C, 1)``, reading every channel) and ``after`` ``H' x W'``, in the same scale; ``after``'s
    shape must be the output shape of a ``size`` kernel with these
    ``stride``/``padding``/``dilation`` on ``before``. ``'full'`` padding and
    non-zero ``border`` modes pad ``before`` once, before training (it is
    data, not weights), and the layer trains with 'valid'. ``seed`` fixes the
    initial weights. ``progress(epochs_done, max_epochs, loss)`` is called
    every :data:`STEPS_PER_CALL` epochs (loss relative to the target's mean
    square). Raises ``ValueError`` for bad arguments or mismatched shapes.
    """
    before = _matrix(before, "before", channels_allowed=True)
    after = _matrix(after, "after")
    window = check_size(size)
    channels = 1 if before.ndim == 2 else before.shape[2]
    shape = window if channels == 1 else (*window, channels, 1)
    stage = Conv2DSpec(np.zeros(shape), stride, padding, dilation, 0.0, border, name="learned")
    stride, padding, dilation, border = stage.stride, stage.padding, stage.dilation, stage.border
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ArgumentError(f"epochs must be a positive integer, got {epochs!r}")
    if not (isinstance(learning_rate, int | float) and math.isfinite(learning_rate) and learning_rate > 0):
        raise ArgumentError(f"learning rate must be a positive number, got {learning_rate!r}")
    (expected,) = ChainSpec((replace(stage, border="zero"),)).shapes(before.shape[:2])
    if after.shape != expected:
        raise PairError(
            f"AFTER is {after.shape[0]}x{after.shape[1]} but a {window[0]}x{window[1]} kernel with stride "
            f"{stride[0]}x{stride[1]}, dilation {dilation[0]}x{dilation[1]} and {padding_text(padding)} "
            f"padding turns the {before.shape[0]}x{before.shape[1]} BEFORE into {expected[0]}x{expected[1]}"
        )
    train_input, train_stage = before, replace(stage, border="zero")
    if padding == "full" or stage.explicit or (padding == "same" and border != "zero"):
        pads = stage.pads(before.shape)
        train_input = pad_batch(before[np.newaxis], pads[0], pads[1], border)[0]
        train_stage = Conv2DSpec(stage.kernel, stride, "valid", dilation, 0.0, name="learned")
    kernel, bias, epochs_run, stopped = _train(
        train_input, after, train_stage, learn_bias, epochs, float(learning_rate), int(seed), progress
    )
    from convfilter.engine.conv import filter_array

    predicted = filter_array(
        before, kernel, stride=stride, padding=padding, dilation=dilation, bias=bias or 0.0, border=border
    ).astype(np.float64)
    difference = predicted - after
    return LearnResult(
        kernel=kernel,
        bias=bias,
        error=float(np.mean(difference**2)),
        max_error=float(np.abs(difference).max()),
        epochs=epochs_run,
        max_epochs=epochs,
        stopped_early=stopped,
        input_shape=before.shape[:2],
        output_shape=after.shape,
    )


def _matrix(values: np.ndarray, name: str, channels_allowed: bool = False) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim not in ((2, 3) if channels_allowed else (2,)) or values.size == 0:
        what = "2-D (or H x W x C)" if channels_allowed else "2-D"
        raise PairError(f"{name} must be a non-empty {what} array, got shape {values.shape}")
    if not np.isfinite(values).all():
        raise PairError(f"{name} must hold finite values")
    return values


def _train(before, after, stage, learn_bias, epochs, learning_rate, seed, progress):
    from convfilter.engine.model import keras_module

    keras = keras_module()
    import tensorflow as tf

    scale = float(np.abs(before).max()) or 1.0
    x = (before / scale).astype(np.float32)[np.newaxis]
    x = x[..., np.newaxis] if x.ndim == 3 else x
    y = (after / scale).astype(np.float32)[np.newaxis, ..., np.newaxis]

    inputs = keras.Input(shape=x.shape[1:], name="image")
    layer_stage = Conv2DSpec(
        stage.kernel, stage.stride, stage.padding, stage.dilation, 1.0 if learn_bias else 0.0
    )
    output = add_stage(keras, inputs, layer_stage, before.shape[:2], "conv")
    conv = keras.Model(inputs, output).get_layer("conv")
    rng = np.random.default_rng(seed)
    initial = [rng.normal(0.0, 1.0 / stage.kernel.size, stage.weights4.shape).astype(np.float32)]
    if learn_bias:
        initial.append(np.zeros(1, dtype=np.float32))
    conv.set_weights(initial)

    highpass = _highpass_layer(keras, after.shape)
    model = keras.Model(inputs, highpass(output), name="convfilter_learn")
    target = np.asarray(highpass(y))
    power = float(np.mean(target.astype(np.float64) ** 2))
    chunk = math.gcd(epochs, STEPS_PER_CALL)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse", steps_per_execution=chunk)
    data = tf.data.Dataset.from_tensors((x, target)).repeat()
    monitor = _Monitor(keras, chunk, epochs, power, progress)
    if power > 0:
        model.fit(
            data,
            epochs=epochs // chunk,
            steps_per_epoch=chunk,
            verbose=0,
            shuffle=False,
            callbacks=[monitor.callback],
        )
    else:  # AFTER is all zeros after the high-pass: the zero kernel is the answer
        conv.set_weights([np.zeros_like(w) for w in initial])
        monitor.stopped = True
    if monitor.best_weights is not None:
        conv.set_weights(monitor.best_weights)
    weights = conv.get_weights()
    kernel = weights[0][..., 0].astype(np.float64)  # (kh, kw, C)
    kernel = kernel[..., 0] if kernel.shape[2] == 1 else kernel[..., np.newaxis]  # 2-D, or (kh, kw, C, 1)
    bias = float(weights[1][0]) * scale if learn_bias else None
    return kernel, bias, monitor.epochs, monitor.stopped


def _highpass_layer(keras, shape):
    """A frozen Conv2D: channel 0 the 3x3 Laplacian, channel 1 ``IDENTITY_WEIGHT`` times the input."""
    size = 3 if min(shape) >= 3 else 1
    weights = np.zeros((size, size, 1, 2), dtype=np.float32)
    centre = size // 2
    if size == 3:
        weights[..., 0, 0] = [[0, -1, 0], [-1, 4, -1], [0, -1, 0]]
    weights[centre, centre, 0, 1] = IDENTITY_WEIGHT if size == 3 else 1.0
    layer = keras.layers.Conv2D(2, size, use_bias=False, trainable=False, name="highpass")
    layer.build((None, None, None, 1))
    layer.set_weights([weights])
    return layer


class _Monitor:
    """Progress reports, early stopping (no 1% gain in a while, or float32's floor) and the best weights."""

    def __init__(self, keras, chunk, epochs, power, progress):
        self.chunk, self.max_epochs, self.power, self.progress = chunk, epochs, power, progress
        self.best = math.inf
        self.best_weights = None
        self.waited = 0
        self.epochs = 0
        self.stopped = False
        monitor = self

        class Callback(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                monitor.update(self.model, (epoch + 1) * monitor.chunk, float((logs or {})["loss"]))

        self.callback = Callback()

    def update(self, model, epochs, loss):
        self.epochs = epochs
        relative = loss / self.power
        if self.progress is not None:
            self.progress(epochs, self.max_epochs, relative)
        self.waited = 0 if loss < self.best * 0.99 else self.waited + 1
        if loss < self.best:
            self.best = loss
            self.best_weights = model.get_layer("conv").get_weights()
        if relative < CONVERGED or self.waited >= PATIENCE_CALLS:
            if epochs < self.max_epochs:
                self.stopped = True
            model.stop_training = True
