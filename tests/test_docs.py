"""The docs are true: every command they show runs, every output they show is what it prints,
and the command reference is the real ``--help``.

* ```` ```console ```` blocks: each ``$ command`` runs (in one sandbox per file, in order, so a
  file's commands build on each other) and must print the lines below it; a line ``...`` stands
  for any number of lines, and ``…`` inside a line for any text.
* ```` ```sh ```` blocks: each command runs and must succeed (exit 0), its output unchecked.
* ```` ```python ```` blocks run and must not raise (each in fresh globals, in one Python process per
  file).
* ``docs/reference.md`` is regenerated from the ``--help`` texts (``python docs/make_reference.py``)
  and must be unchanged.

The sandbox holds copies of ``sample_images/`` and ``docs/examples/``, plus the small files the
examples name (``in.png``, ``photo.jpg`` ...). Commands run through a warm convfilter server
started for this module (the commands print the same through it), and are stopped afterwards.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import warm_server
from PIL import Image

pytestmark = pytest.mark.slow  # servers, clusters and subprocesses: the full suite only

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent


def blocks(path: Path, kind: str) -> list[tuple[int, list[str]]]:
    """The ``kind`` fenced blocks of ``path``: (line number of the fence, lines inside)."""
    found, current, start = [], None, 0
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if current is None and line.strip() == f"```{kind}":
            current, start = [], number
        elif current is not None and line.strip() == "```":
            found.append((start, current))
            current = None
        elif current is not None:
            current.append(line)
    return found


def console_commands(lines: list[str]) -> list[tuple[str, list[str]]]:
    """``(command, expected output lines)`` of a console block; ``\\`` continues a command."""
    commands: list[tuple[str, list[str]]] = []
    pending = None
    for line in lines:
        if pending is not None:
            pending += "\n" + line
            if not line.endswith("\\"):
                commands.append((pending, []))
                pending = None
        elif line.startswith("$ "):
            if line.endswith("\\"):
                pending = line[2:]
            else:
                commands.append((line[2:], []))
        elif commands:
            commands[-1][1].append(line)
    return commands


def sh_commands(lines: list[str]) -> list[str]:
    """The commands of a sh block (comments and blank lines skipped, ``\\`` continuations joined)."""
    commands, pending = [], ""
    for line in lines:
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line + "\n"
        if not line.endswith("\\"):
            commands.append(pending.strip())
            pending = ""
    return commands


def matches(expected: list[str], actual: list[str]) -> bool:
    """``actual`` lines against ``expected``, with ``...`` lines and ``…`` inside lines as wildcards."""
    pattern = ""
    for line in expected:
        if line == "...":
            pattern += r"(?:.*\n)*?"
        else:
            pattern += ".*?".join(re.escape(part) for part in line.split("…")) + r"\n"
    return re.fullmatch(pattern, "".join(line + "\n" for line in actual)) is not None


def make_sandbox(where: Path) -> Path:
    """A working directory with the files the examples read."""
    shutil.copytree(ROOT / "sample_images", where / "sample_images")
    shutil.copytree(ROOT / "docs" / "examples", where / "docs" / "examples")
    ascent = Image.open(ROOT / "sample_images" / "ascent.png")
    ascent.save(where / "in.png")
    ascent.convert("RGB").save(where / "photo.jpg", quality=90)
    logo = ascent.convert("RGBA").resize((1024, 768))
    logo.putalpha(Image.linear_gradient("L").resize((1024, 768)))
    logo.save(where / "logo.png")
    (where / "photos").mkdir()
    for name, box in (("a", (0, 0, 256, 256)), ("b", (256, 0, 512, 256)), ("c", (0, 256, 256, 512))):
        ascent.crop(box).convert("RGB").save(where / "photos" / f"{name}.jpg")
    np.savetxt(where / "signal.csv", np.array([[1.0, 2.0, 4.0, 7.0]]), delimiter=",", fmt="%g")
    np.savetxt(where / "small.csv", np.arange(16.0).reshape(4, 4), delimiter=",", fmt="%g")
    return where


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A warm server for every command the docs run (started here, always stopped)."""
    with warm_server(
        tmp_path_factory.mktemp("docs-runtime"),
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        COLUMNS="100",
        PYTHONUNBUFFERED="1",
    ) as env:
        yield env


def shell(command: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
    )


RUNNABLE = [path for path in DOCS if blocks(path, "console") or blocks(path, "sh") or blocks(path, "python")]


PYTHON_BLOCKS = r"""
import contextlib, io, json, sys, traceback
for line in sys.stdin:
    block = json.loads(line)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(block["code"], block["where"], "exec"), {"__name__": "__main__"})
        reply = {"ok": True}
    except BaseException:
        reply = {"ok": False, "error": traceback.format_exc()}
    sys.__stdout__.write(json.dumps(reply) + "\n")
    sys.__stdout__.flush()
"""
"""A Python process that runs a page's ``python`` blocks one by one, each in fresh globals, and
answers ``{"ok": ...}`` per block: a page imports TensorFlow once, not once per block."""


class PythonBlocks:
    """The page's Python process, started at its first block (in the sandbox), stopped at the end."""

    def __init__(self, sandbox: Path):
        self.sandbox, self.process = sandbox, None

    def run(self, code: str, where: str) -> dict:
        if self.process is None:
            self.log = open(self.sandbox.parent / "python-blocks.log", "w+")
            self.process = subprocess.Popen(
                [sys.executable, "-c", PYTHON_BLOCKS],
                cwd=self.sandbox,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self.log,
                text=True,
            )
        self.process.stdin.write(json.dumps({"code": code, "where": where}) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            self.log.seek(0)
            return {"ok": False, "error": "the Python process ended:\n" + self.log.read()}
        return json.loads(answer)

    def close(self) -> None:
        if self.process is not None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.log.close()


@pytest.mark.parametrize("doc", RUNNABLE, ids=[path.name for path in RUNNABLE])
def test_every_command_shown_runs_and_prints_what_is_shown(doc, served, tmp_path):
    sandbox = make_sandbox(tmp_path)
    # A page may show 'convfilter server stop': every page starts with the server running.
    subprocess.run([BIN / "convfilter", "server", "start"], env=served, capture_output=True, timeout=180)
    runs = []
    for start, lines in blocks(doc, "console"):
        runs += [(start, command, expected) for command, expected in console_commands(lines)]
    for start, lines in blocks(doc, "sh"):
        runs += [(start, command, None) for command in sh_commands(lines)]
    for start, lines in blocks(doc, "python"):
        runs.append((start, "\n".join(lines), "python"))
    runs.sort(key=lambda run: run[0])  # in the order the reader meets them
    python = PythonBlocks(sandbox)
    try:
        for start, command, expected in runs:
            where = f"{doc.name}:{start}: {command}"
            if expected == "python":
                answer = python.run(command, f"{doc.name}:{start}")
                assert answer["ok"], f"{where}\n{answer.get('error')}"
                continue
            result = shell(command, sandbox, served)
            if expected is None:
                assert result.returncode == 0, f"{where}\n{result.stdout}"
            else:
                actual = result.stdout.splitlines()
                assert matches(expected, actual), (
                    f"{where}\n--- shown\n" + "\n".join(expected) + ("\n--- printed\n" + result.stdout)
                )
    finally:
        python.close()


def test_the_command_reference_is_the_real_help():
    result = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "make_reference.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_readme_is_a_landing_page():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250
    for path in DOCS:  # every relative link points at a file that exists
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", path.read_text()):
            assert (path.parent / target).exists(), f"{path.name}: broken link {target}"
