"""Helpers the command tests share: invoking the CLI in-process, reading and writing small images."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from PIL import Image

from convfilter.cli import cli

ASCENT = Path(__file__).resolve().parent.parent / "sample_images" / "ascent.png"
SOBEL_X = np.array([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])
BOX = np.full((3, 3), 1 / 9)


def installed_convfilter() -> Path:
    """The installed ``convfilter`` console script, next to the running interpreter; the test is
    skipped where there is none (the one skip rule for tests of the installed command)."""
    exe = Path(sys.executable).with_name("convfilter")
    if not exe.exists():
        import pytest

        pytest.skip("convfilter console script is not installed in this environment")
    return exe


@contextlib.contextmanager
def warm_server(runtime: Path, *args: str, **extra_env: str) -> Iterator[dict]:
    """``convfilter server start ARGS`` (detached) in the private runtime directory ``runtime``;
    yield the environment (``extra_env`` added) in which the installed command uses that server.
    Stopped when the block ends, also when it fails."""
    exe = installed_convfilter()
    runtime.mkdir(mode=0o700, exist_ok=True)
    runtime.chmod(0o700)
    env = {key: value for key, value in os.environ.items() if key != "CONVFILTER_SERVER"}
    env.update(extra_env, CONVFILTER_RUNTIME_DIR=str(runtime))
    started = subprocess.run([exe, "server", "start", *args], env=env, capture_output=True, timeout=180)
    assert started.returncode == 0, started.stderr
    try:
        yield env
    finally:
        subprocess.run([exe, "server", "stop"], env=env, capture_output=True, timeout=120)


def run(*args):
    """The CLI in-process on ``args`` (any values, made strings); an exception propagates."""
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False, prog_name="convfilter")


def invoke(*args, env: dict | None = None, input=None):
    """The CLI in-process on ``args`` (``env`` set and ``input`` on standard input meanwhile); an
    exception is caught into the result."""
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="convfilter", env=env, input=input)


def read(path_or_bytes) -> np.ndarray:
    """The pixels of an image file (or of its bytes)."""
    source = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    with Image.open(source) as img:
        return np.asarray(img)


def save(path, shape=(12, 12), seed=0, *, value=None, **params):
    """Write seeded random 8-bit gray pixels of ``shape`` (all ``value`` if given) to ``path`` with
    Pillow's save ``params``; return them."""
    rng = np.random.default_rng(seed)
    pixels = np.full(shape, value, np.uint8) if value is not None else rng.integers(0, 256, shape, np.uint8)
    Image.fromarray(pixels).save(path, **params)
    return pixels


def rescaled(values: np.ndarray) -> np.ndarray:
    """``--range rescale`` from its definition: min..max onto 0..255, rounded."""
    return np.rint((values - values.min()) / (values.max() - values.min()) * 255)


TIE = 1e-3
"""How near a rounding tie (x.5) a reference value may lie and still round either way.

The layer sums in float32 and the references in float64: a value that lies on .5 (a 3x3 average of
integers often does) can land a hair below or above it, so rounding may go either way there, and
only there. Everywhere else the written pixel must be exactly the rounded reference."""


def rescale_reference(values: np.ndarray, out_max: int = 255) -> np.ndarray:
    """``--range rescale`` from its definition, before rounding: min..max onto 0..out_max."""
    values = np.asarray(values, dtype=np.float64)
    lo, hi = values.min(), values.max()
    return (values - lo) * (out_max / (hi - lo)) if hi > lo else np.zeros_like(values)


def assert_pixels(written, reference, out_max: int = 255) -> None:
    """``written`` equals ``reference`` (floats in the output's scale) rounded to nearest and clipped
    to ``0..out_max``, exactly; one step either way only where the reference lies within
    :data:`TIE` of a rounding tie."""
    written = np.asarray(written).astype(np.int64)
    reference = np.asarray(reference, dtype=np.float64)
    assert written.shape == reference.shape, (written.shape, reference.shape)
    expected = np.clip(np.rint(reference), 0, out_max).astype(np.int64)
    tie = np.abs(reference - np.floor(reference) - 0.5) < TIE
    wrong = (written != expected) & ~tie
    if wrong.any():
        at = tuple(int(i) for i in np.argwhere(wrong)[0])
        raise AssertionError(
            f"{wrong.sum()} pixels differ from the rounded reference, first at {at}: "
            f"written {written[at]}, reference {reference[at]!r} rounds to {expected[at]}"
        )
    assert np.abs(written - expected)[tie].max(initial=0) <= 1


def clip8(values):
    """``--range clip`` into 8 bits, from its definition."""
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


@contextlib.contextmanager
def server_script(
    script: str, runtime: Path, log: Path, env: dict | None = None, cwd: Path | None = None
) -> Iterator[None]:
    """Run a Python server ``script`` (given ``runtime`` as its argument, its stderr in ``log``, in
    ``cwd``) until it prints ``ready``; stop it when the block ends, also when it fails.

    Which convfilter the script imports depends on ``cwd``: ``python -c`` puts it first on the path,
    so from a checkout it imports the checkout's source (as this test process does), and from
    elsewhere the installed package (as the installed command does). A server is only used by a
    client of the same install."""
    with open(log, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-c", script, str(runtime)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
            cwd=cwd,
        )
        try:
            assert process.stdout.readline().strip() == "ready"
            yield
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
