"""Helpers the command tests share: invoking the CLI in-process, reading and writing small images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from click.testing import CliRunner
from PIL import Image

from convfilter.cli import cli

ASCENT = Path(__file__).resolve().parent.parent / "sample_images" / "ascent.png"
SOBEL_X = np.array([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])
BOX = np.full((3, 3), 1 / 9)


def run(*args):
    """The CLI in-process on ``args`` (any values, made strings); an exception propagates."""
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False, prog_name="convfilter")


def invoke(*args, env: dict | None = None):
    """The CLI in-process on ``args`` (with ``env`` set meanwhile); an exception is caught into the result."""
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="convfilter", env=env)


def read(path) -> np.ndarray:
    """The pixels of an image file."""
    with Image.open(path) as img:
        return np.asarray(img)


def save(path, shape, seed):
    """Write seeded random 8-bit pixels of ``shape`` to ``path``; return them."""
    pixels = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return pixels


def rescaled(values: np.ndarray) -> np.ndarray:
    """``--range rescale`` from its definition: min..max onto 0..255, rounded."""
    return np.rint((values - values.min()) / (values.max() - values.min()) * 255)


def clip8(values):
    """``--range clip`` into 8 bits, from its definition."""
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)
