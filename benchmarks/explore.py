"""The explorer's update time, measured in the browser: from a control's change to the new output on screen.

Starts ``convfilter explore IMAGE --no-browser``, opens the page in headless
Chromium (Playwright for Python, Debian's ``chromium``), and changes the
stride, the kernel, the padding and the range in turn, ``--rounds`` times.
The page records, for every update, the milliseconds from the change to the
output image's ``load`` event (``window.convfilterTimings``): the request,
the layer, the PNG encoding, the transfer and the decoding in the browser.
Each kind of change is reported apart, with its median and 90th percentile;
the first view (a cold model) is left out.

    pip install playwright && apt-get install -y chromium
    python benchmarks/explore.py                     # sample_images/ascent.png, 512 x 512
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
CHANGES = {
    "stride": [("stride-y", "2"), ("stride-y", "1")],
    "kernel": [("kernel", "sobel-x"), ("kernel", "blur")],
    "padding": [("padding", "same"), ("padding", "valid")],
    "range only": [("range", "abs"), ("range", "auto")],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", nargs="?", default=str(ROOT / "sample_images" / "ascent.png"))
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    exe = Path(sys.executable).with_name("convfilter")
    server = subprocess.Popen(
        [str(exe), "explore", args.image, "--no-browser"], stdout=subprocess.PIPE, text=True
    )
    try:
        url = next(line.strip() for line in server.stdout if line.startswith("http://"))
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=shutil.which("chromium"),
                headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            page.wait_for_function("window.convfilterTimings.length >= 1")
            times: dict[str, list[float]] = {name: [] for name in CHANGES}
            for _ in range(args.rounds):
                for name, steps in CHANGES.items():
                    for testid, value in steps:
                        count = page.evaluate("window.convfilterTimings.length")
                        control = page.get_by_test_id(testid)
                        if control.evaluate("e => e.tagName") == "SELECT":
                            control.select_option(value)
                        else:
                            control.fill(value)
                            control.dispatch_event("change")
                        page.wait_for_function("n => window.convfilterTimings.length > n", arg=count)
                        times[name].append(page.evaluate("window.convfilterTimings.at(-1)"))
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=60)
    print(f"convfilter explore, {args.image}: ms from a change to the new output on screen")
    print(f"{'change':<12} {'n':>4} {'median':>8} {'p90':>8}")
    for name, values in times.items():
        values.sort()
        p90 = values[min(len(values) - 1, int(0.9 * len(values)))]
        print(f"{name:<12} {len(values):>4} {statistics.median(values):>8.1f} {p90:>8.1f}")


if __name__ == "__main__":
    main()
