"""Advice names only options that exist: every "raise it with --X" hint, followed, works.

Each case makes the error that gives the hint, checks the hint, then runs the same command with
the advised option and checks that it now succeeds.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import invoke
from PIL import Image


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (12, 10), dtype=np.uint8)).save(path)
    np.save(tmp_path / "after.npy", np.zeros((10, 8)))
    return path


@pytest.mark.parametrize(
    "command",
    [
        ["blur", "{in}", "{out}.png"],
        ["custom", "--kernel", "1,1", "{in}", "{out}.png"],
        ["bank", "sobel-x", "sobel-y", "{in}", "{out}.png"],
        ["pool", "max", "{in}", "{out}.png"],
        ["chain", "{in}", "{out}.png", "blur"],
        ["explain", "{in}", "--kernel-size", "3", "3"],
        ["learn", "{in}", "{after}", "--size", "3", "--epochs", "1"],
    ],
    ids=lambda args: args[0],
)
def test_the_max_pixels_hint_names_an_option_the_command_has(tmp_path, image, command):
    def args(out, *more):
        filled = [
            a.format(**{"in": image, "out": tmp_path / out, "after": tmp_path / "after.npy"}) for a in command
        ]
        return [filled[0], *more, *filled[1:]]  # options first: chain takes its own before INPUT

    refused = invoke(*args("a", "--max-pixels", 100))
    assert refused.exit_code == 1
    assert refused.output.splitlines()[-1].endswith("raise it with --max-pixels if you trust the file")
    followed = invoke(*args("b", "--max-pixels", 120))
    assert followed.exit_code == 0, followed.output


def test_animate_says_what_it_can_draw_instead_of_an_option_it_lacks(tmp_path):
    big = tmp_path / "big.png"
    Image.fromarray(np.zeros((300, 300), dtype=np.uint8)).save(big)
    result = invoke("animate", tmp_path / "a.gif", "--input", big, "--kernel", "blur")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {big}: an animation draws a small input (at most 65536 pixels; its steps are capped at "
        "400); crop it first\n"
    )
    assert "--max-pixels" not in result.output


@pytest.mark.parametrize("command", [["blur"], ["pool", "max"], ["bank", "sobel-x", "sobel-y"]])
def test_the_frame_note_names_an_option_the_command_has(tmp_path, command):
    gif = tmp_path / "two.gif"
    frames = [Image.fromarray(np.full((8, 8), v, dtype=np.uint8)) for v in (10, 200)]
    frames[0].save(gif, save_all=True, append_images=frames[1:])
    first = invoke(*command, gif, tmp_path / "a.png")
    assert first.exit_code == 0, first.output
    assert "(pick another with --frame N)" in first.output
    second = invoke(*command, gif, tmp_path / "b.png", "--frame", 1)
    assert second.exit_code == 0, second.output
