"""``--compare FIGURE`` and ``--export MODEL.keras``: checked before any work, written after the output."""

from __future__ import annotations

import os

import click

from convfilter.errors import ArgumentError, ConvFilterError
from convfilter.export import check_model_path, export_stack
from convfilter.figures import check_figure_path, compare_figure
from convfilter.io.matrices import is_matrix_path
from convfilter.ops.spec import Operation
from convfilter.run.files import FilterResult


def check_distinct(inputs: dict[str, str | None], extras: dict[str, str | None]) -> None:
    """Refuse a side file (``extras``, by option) that is also an input, the output or another side file."""
    taken = {os.path.realpath(path): name for name, path in inputs.items() if path}
    for name, path in extras.items():
        if not path:
            continue
        key = os.path.realpath(path)
        if key in taken:
            raise click.UsageError(f"{path}: is also {taken[key]}; {name} needs a file of its own")
        taken[key] = name


def refuse_existing(paths: list[str | None], overwrite: bool) -> None:
    """A :class:`ConvFilterError` for the first of ``paths`` that exists, unless ``overwrite``."""
    for path in paths:
        if path and not overwrite and os.path.lexists(path):
            raise ConvFilterError(f"{path}: already exists (use --overwrite to replace it)")


def check_side_outputs(
    input_path: str,
    output_path: str | None,
    compare_path: str | None,
    export_path: str | None,
    *,
    color: bool = False,
    border: str = "zero",
    padding: str = "valid",
    overwrite: bool = False,
) -> None:
    """Before any work: the figure and model paths are usable and distinct, and the settings allow them.

    Like every file convfilter writes, an existing figure or model is refused
    unless ``overwrite``.

    ``--compare`` draws one channel, so it is refused with ``--color``;
    ``--export`` is refused with a non-zero ``--border``, which has no
    standard Keras layer (the saved model would not compute the output).
    """
    if compare_path and color:
        raise click.UsageError("--compare draws single-channel results; leave out --color")
    if export_path and border != "zero" and padding != "valid":
        raise ArgumentError(
            f"--export: border {border!r} is padded outside Keras (no standard layer does it), so a saved "
            "model would not compute this output; use --border zero"
        )
    if compare_path:
        check_figure_path(compare_path)
    if export_path:
        check_model_path(export_path)
    refuse_existing([compare_path, export_path], overwrite)
    check_distinct(
        {"INPUT": input_path, "OUTPUT": output_path}, {"--compare": compare_path, "--export": export_path}
    )


def write_side_outputs(
    op: Operation,
    result: FilterResult,
    compare_path: str | None,
    export_path: str | None,
    *,
    overwrite: bool = False,
) -> None:
    """After the output: draw the ``--compare`` figure and save the ``--export`` model of ``op``
    (never over a file that appeared since planning, unless ``overwrite``).

    The figure and the model show the weights the layers hold (flipped with ``--convolve``).
    """
    if compare_path:
        outputs = result.stage_values or [result.values]
        compare_figure(
            compare_path,
            result.input_values[0],
            list(op.stages),
            [values[0] for values in outputs],
            input_max=None if is_matrix_path(result.input) else result.input_max,
            mapping=result.range_mode,
            input_note=f" (channel 1 of {op.channels})" if op.channels > 1 else "",
            replace=overwrite,
        )
    if export_path:
        export_stack(export_path, op.stages, result.input_shape, replace=overwrite)
