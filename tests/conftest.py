"""Shared fixtures: small deterministic images written with Pillow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

from helpers import installed_convfilter, warm_server  # noqa: E402 (tests/ is on the path from here on)

SAMPLES = Path(__file__).resolve().parent.parent / "sample_images"


@pytest.fixture
def gray_png(tmp_path: Path) -> Path:
    """A 13x17 8-bit grayscale PNG of seeded random values (non-square, textured)."""
    pixels = np.random.default_rng(42).integers(0, 256, (13, 17), dtype=np.uint8)
    path = tmp_path / "gray.png"
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture
def convfilter_exe() -> Path:
    """The installed console script, next to the running interpreter."""
    return installed_convfilter()


@pytest.fixture(scope="session")
def server_env(tmp_path_factory):
    """An environment in which the installed command forwards to a warm server: started once per test
    process (in a private runtime directory), always stopped.

    For tests of what a command does, not of how a cold process starts: the client is the real
    installed command, the work runs in the server, which already has TensorFlow loaded. Cold starts
    are tested where they are the point (``test_contract_startup``, ``test_server``, and
    ``test_cmd_filter``'s clean stderr)."""
    with warm_server(tmp_path_factory.mktemp("server-runtime")) as env:
        yield env
        status = subprocess.run(
            [installed_convfilter(), "server", "status"], env=env, capture_output=True, text=True, timeout=60
        )
        # A client that cannot use the server runs the command itself: the tests would pass, slowly.
        assert "jobs served:  0\n" not in status.stdout, status.stdout


SLOW_FIXTURES = {"convfilter_exe", "server_env"}
"""Fixtures that make a test slow by themselves: running the installed command is a new process
that imports TensorFlow (seconds each), or talks to a server that did."""


def pytest_collection_modifyitems(config, items):
    """Mark every test that runs the installed command as ``slow`` (``pytest -m "not slow"`` skips it)."""
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """Good and bad files of every image mode (``tests/image_corpus.py``), built once per run."""
    from image_corpus import build_corpus

    return build_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture
def crop_png(tmp_path: Path) -> Path:
    """A 40x48 crop of the sample image: real texture, small enough to be fast."""
    with Image.open(SAMPLES / "ascent.png") as img:
        pixels = np.asarray(img)
    path = tmp_path / "crop.png"
    Image.fromarray(pixels[200:240, 100:148]).save(path)
    return path
