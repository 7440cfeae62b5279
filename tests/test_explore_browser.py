"""``convfilter explore`` in a real browser: Playwright for Python driving Debian's Chromium, headless,
against the installed command serving the sample image.

Skipped, with the reason, where Playwright or Chromium is missing (``.ci/run`` installs both).
Set ``CONVFILTER_SCREENSHOT_DIR`` to keep the page's screenshot (docs/images/explore.png is one).
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import ASCENT, read, run, save

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("explore_browser")]  # one server, one browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
EXE = Path(sys.executable).with_name("convfilter")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
playwright = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
if CHROMIUM is None:
    pytest.skip("no Chromium found (apt-get install -y chromium)", allow_module_level=True)
if not EXE.exists():
    pytest.skip("the convfilter console script is not installed", allow_module_level=True)


def start_explore(*args: str) -> tuple[subprocess.Popen, str]:
    """``convfilter explore ARGS --no-browser`` and the URL it printed."""
    process = subprocess.Popen(
        [str(EXE), "explore", *args, "--no-browser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("http://"):
            return process, line.strip()
    process.kill()
    raise AssertionError(f"no URL printed: {''.join(lines)} {process.stderr.read()}")


def stop(process: subprocess.Popen) -> int:
    """Ctrl-C, then the exit status (a generous ceiling: the machine may be loaded)."""
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()


@pytest.fixture(scope="module")
def explore():
    process, url = start_explore(str(ASCENT))
    try:
        yield url
    finally:
        stop(process)


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        yield context.new_page()
    finally:
        context.close()


def show(page, url: str) -> None:
    page.goto(url)
    page.wait_for_function("document.querySelector('[data-testid=output]').dataset.key")


def output_bytes(page) -> bytes:
    """The PNG the output ``<img>`` shows (inline, as the server sent it)."""
    src = page.get_by_test_id("output").get_attribute("src")
    assert src.startswith("data:image/png;base64,")
    return base64.b64decode(src.split(",", 1)[1])


def wait_for_shape(page, text: str) -> None:
    page.wait_for_function(
        "t => document.querySelector('[data-testid=output-shape]').textContent === t && "
        "document.querySelector('[data-testid=output]').complete",
        arg=text,
    )
    page.wait_for_function(
        "() => document.querySelector('[data-testid=output]').dataset.key === document.body.dataset.view"
    )


def test_the_url_state_shows_the_cli_output(page, explore, tmp_path):
    show(page, explore + "&kernel=blur&stride=2,1&padding=valid")
    assert page.get_by_test_id("output-shape").inner_text() == "255 × 510"
    assert page.get_by_test_id("stride-y").input_value() == "2"
    assert page.get_by_test_id("stride-x").input_value() == "1"
    assert page.get_by_test_id("padding").input_value() == "valid"
    natural = page.get_by_test_id("output").evaluate("img => [img.naturalHeight, img.naturalWidth]")
    assert natural == [255, 510]
    out = tmp_path / "out.png"
    run("blur", ASCENT, out, "--stride", 2, 1)
    assert output_bytes(page) == out.read_bytes()
    assert "stride=2%2C1" in page.url and "kernel=blur" in page.url


def test_a_stride_change_updates_shape_image_and_url(page, explore, tmp_path):
    show(page, explore + "&kernel=blur&stride=2,1")
    page.get_by_test_id("stride-y").fill("3")
    page.get_by_test_id("stride-y").dispatch_event("change")
    wait_for_shape(page, "170 × 510")
    assert "stride=3%2C1" in page.url
    out = tmp_path / "out.png"
    run("blur", ASCENT, out, "--stride", 3, 1)
    assert output_bytes(page) == out.read_bytes()
    assert page.get_by_test_id("output").evaluate("img => img.naturalHeight") == 170
    assert len(page.evaluate("window.convfilterTimings")) >= 2  # every update is timed (docs/explore.md)


def hover_numbers(page, x: float, y: float) -> tuple[int, int, str, str]:
    """Move the mouse to ``(x, y)``; the row, column and sum the dot-product panel then shows."""
    before = page.get_by_test_id("dot-product").text_content()
    page.mouse.move(x, y)
    page.wait_for_function(
        "t => { const p = document.querySelector('[data-testid=dot-product]'); "
        "return !p.hidden && p.textContent !== t; }",
        arg=before,
    )
    text = page.get_by_test_id("dot-product").inner_text()
    row, col = map(int, re.search(r"row (\d+), col (\d+)", text).groups())
    return row, col, re.search(r"= (\S+)\n", text + "\n").group(1), text


def test_hover_numbers_are_the_clis_npy_values(page, explore, tmp_path):
    options = ["--stride", 2, 1, "--padding", "same", "--border", "reflect", "--dilation", 2, 2]
    show(page, explore + "&kernel=sobel-x&stride=2,1&padding=same&border=reflect&dilation=2,2")
    npy = tmp_path / "out.npy"
    run("sobel-x", ASCENT, npy, *options)
    values = np.load(npy)
    assert page.get_by_test_id("output-shape").inner_text() == f"{values.shape[0]} × {values.shape[1]}"
    box = page.get_by_test_id("output").bounding_box()
    for fx, fy in [(0.3, 0.4), (0.51, 0.77), (0.9, 0.1)]:  # anywhere: the panel names the pixel
        row, col, shown, text = hover_numbers(
            page, box["x"] + fx * box["width"], box["y"] + fy * box["height"]
        )
        assert (
            abs(row - fy * values.shape[0]) <= 3 and abs(col - fx * values.shape[1]) <= 3
        )  # whole CSS pixels
        assert shown == str(np.float32(values[row, col])), text
        assert text.count("×") == 2 * 9  # nine products, in the line and in the window's table
    screenshot_dir = os.environ.get("CONVFILTER_SCREENSHOT_DIR")
    page.screenshot(path=str(Path(screenshot_dir or tmp_path) / "explore.png"), full_page=True)


def test_hover_numbers_at_the_padded_corners(page, explore, tmp_path):
    picture = tmp_path / "small.png"
    save(picture, (9, 12), seed=4)
    options = ["--stride", 2, 1, "--padding", "same", "--border", "reflect", "--dilation", 2, 2]
    show(page, explore + "&kernel=sobel-x&stride=2,1&padding=same&border=reflect&dilation=2,2")
    page.get_by_test_id("upload").set_input_files(str(picture))
    wait_for_shape(page, "5 × 12")
    npy = tmp_path / "out.npy"
    run("sobel-x", picture, npy, *options)
    values = np.load(npy)
    box = page.get_by_test_id("output").bounding_box()  # 30 CSS pixels an output pixel
    for row, col in [(0, 0), (4, 11), (0, 11)]:
        x = box["x"] + (col + 0.5) * box["width"] / 12
        y = box["y"] + (row + 0.5) * box["height"] / 5
        assert hover_numbers(page, x, y)[:3] == (row, col, str(np.float32(values[row, col])))
    assert page.get_by_test_id("dot-product").locator("td.pad").count() > 0  # padding is marked


def test_the_keras_code_and_command_panels(page, explore):
    show(page, explore + "&kernel=blur&stride=2,1")
    code = page.get_by_test_id("keras-code").inner_text()
    assert (
        "layer = keras.layers.Conv2D(1, (3, 3), strides=(2, 1), padding='valid', dilation_rate=(1, 1), "
        "use_bias=False)" in code
    )
    assert "y = model.predict(x, verbose=0)[0, :, :, 0]" in code
    command = page.get_by_test_id("command").inner_text()
    assert command.startswith("convfilter blur ") and command.endswith("ascent.png out.png --stride 2 1")


def test_an_upload_is_filtered_and_a_broken_one_is_one_error_line(page, explore, tmp_path):
    show(page, explore + "&kernel=blur")
    error = page.get_by_test_id("error")
    page.get_by_test_id("upload").set_input_files(
        {"name": "broken.png", "mimeType": "image/png", "buffer": b"\x89PNG\r\n\x1a\nthis is not a PNG"}
    )
    error.wait_for(state="visible")
    assert error.inner_text().startswith("Error: uploaded.png: ")
    picture = tmp_path / "small.png"
    save(picture, (9, 12), seed=4)
    page.get_by_test_id("upload").set_input_files(str(picture))
    wait_for_shape(page, "7 × 10")  # the server went on after the broken upload
    assert error.is_hidden()
    out = tmp_path / "out.png"
    run("blur", picture, out)
    assert output_bytes(page) == out.read_bytes()
    assert np.array_equal(read(out).shape, (7, 10))


def test_a_bad_value_shows_an_error_and_keeps_the_last_output(page, explore):
    show(page, explore + "&kernel=blur")
    key = page.get_by_test_id("output").get_attribute("data-key")
    page.get_by_test_id("padding").fill("wide")
    page.get_by_test_id("padding").dispatch_event("change")
    error = page.get_by_test_id("error")
    error.wait_for(state="visible")
    assert error.inner_text().startswith("Error: padding: The `padding` argument must be one of")
    assert page.get_by_test_id("output").get_attribute("data-key") == key


def test_requests_without_the_token_are_refused(browser, explore):
    base = explore.split("?")[0]
    context = browser.new_context()  # no cookie from an earlier visit
    try:
        page = context.new_page()
        assert page.goto(base).status == 401
        assert page.goto(base + "?token=wrong").status == 403
        assert page.goto(base + "static/app.js").status == 401
        assert page.goto(explore).status == 200
    finally:
        context.close()


def test_the_command_serves_on_loopback_until_ctrl_c(tmp_path):
    process, url = start_explore("--port", "0")  # no IMAGE: the sample photograph
    port = int(re.match(r"http://127\.0\.0\.1:(\d+)/\?token=\S+$", url).group(1))
    try:
        listening = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
        local = [
            fields[1] for fields in listening if fields[1].endswith(f":{port:04X}") and fields[3] == "0A"
        ]
        assert local == [f"0100007F:{port:04X}"]  # 127.0.0.1 only
        with socket.create_connection(("127.0.0.1", port), timeout=30):
            pass
    finally:
        status = stop(process)
    assert status == 130
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=5)
