"""Each no-clobber layer on its own through the warm server (``tests/test_contract_safety_layers.py``
tests them in-process).

The server is the real one (``convfilter.server.daemon.Server`` with the command line's own host) in
a private runtime directory, started by a small script that first wraps the runner's decode and
model: each call is recorded in a file, and the model makes the paths listed in ``appear.txt``
appear (holding ``theirs``) before it runs, as another program would between planning and writing.
The client is the installed ``convfilter`` command, which forwards to that server.
"""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import pytest
from helpers import installed_convfilter, save, server_script

# A server process and the installed command; one worker runs the module's one server.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("safety_layers_server")]

EXISTS = "already exists (use --overwrite to replace it or --skip-existing to keep it)"
SERVER = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import convfilter.run.runner as runner
    from convfilter.cli import cli
    from convfilter.cli.server import CommandHost
    from convfilter.server.daemon import Server

    runtime = Path(sys.argv[1])
    real_read, real_apply = runner.read_input, runner.apply

    def record(what):
        with open(runtime / "work.txt", "a") as log:
            log.write(what + "\\n")

    def read_input(*args, **kwargs):
        record(f"decode {args[0]}")
        return real_read(*args, **kwargs)

    def apply(*args, **kwargs):
        record("model")
        for line in (runtime / "appear.txt").read_text().splitlines():
            if line and not Path(line).exists():
                Path(line).write_bytes(b"theirs")
        return real_apply(*args, **kwargs)

    runner.read_input, runner.apply = read_input, apply
    Server(str(runtime), 300.0, CommandHost(cli)).serve(lambda server: print("ready", flush=True))
    """
)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """``(run, appear)``: run the installed command through the server, giving its exit code, output
    and what the server decoded and modelled; name the paths to appear while the model next runs."""
    convfilter_exe = installed_convfilter()
    runtime = tmp_path_factory.mktemp("server") / "runtime"
    runtime.mkdir(mode=0o700)
    (runtime / "appear.txt").write_text("")
    env = {key: value for key, value in os.environ.items() if key != "CONVFILTER_SERVER"}
    env["CONVFILTER_RUNTIME_DIR"] = str(runtime)
    work = runtime / "work.txt"

    def run(*args):
        work.write_text("")
        done = subprocess.run(
            [str(convfilter_exe), *map(str, args)], env=env, capture_output=True, text=True, timeout=120
        )
        (runtime / "appear.txt").write_text("")
        return done.returncode, done.stdout + done.stderr, work.read_text().splitlines()

    def appear(*paths: Path):
        (runtime / "appear.txt").write_text("".join(f"{path}\n" for path in paths))

    # In the runtime directory: the installed package, as the installed command's client imports it.
    with server_script(SERVER, runtime, runtime.parent / "server.log", env, cwd=runtime):
        yield run, appear


def test_through_the_server_an_existing_output_is_refused_before_decoding(tmp_path, served):
    run, _ = served
    save(tmp_path / "in.png", (6, 7), seed=1)
    code, output, work = run("blur", tmp_path / "in.png", tmp_path / "first.png")
    assert (code, work) == (0, [f"decode {tmp_path / 'in.png'}", "model"])  # the server's runner ran it
    (tmp_path / "out.png").write_bytes(b"mine")
    code, output, work = run("blur", tmp_path / "in.png", tmp_path / "out.png")
    assert (code, output, work) == (1, f"Error: {tmp_path / 'out.png'}: {EXISTS}\n", [])
    assert (tmp_path / "out.png").read_bytes() == b"mine"


def test_through_the_server_a_batch_refuses_existing_outputs_before_decoding(tmp_path, served):
    run, _ = served
    for name in ("a.png", "b.png"):
        save(tmp_path / name, (6, 7), seed=len(name))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "b.png").write_bytes(b"mine")
    code, output, work = run("blur", tmp_path / "a.png", tmp_path / "b.png", "-o", tmp_path / "out")
    assert code == 1
    assert output == f"Error: {tmp_path / 'out' / 'b.png'}: {EXISTS}\n1 written, 1 failed, 0 skipped\n"
    assert work == [f"decode {tmp_path / 'a.png'}", "model"]  # b.png was refused before it was decoded
    assert (tmp_path / "out" / "b.png").read_bytes() == b"mine"


def test_through_the_server_a_file_created_after_planning_is_refused_at_write_time(tmp_path, served):
    run, appear = served
    save(tmp_path / "in.png", (6, 7), seed=1)
    appear(tmp_path / "out.png")
    code, output, work = run("blur", tmp_path / "in.png", tmp_path / "out.png")
    decoded = [f"decode {tmp_path / 'in.png'}", "model"]
    assert (code, output, work) == (1, f"Error: {tmp_path / 'out.png'}: {EXISTS}\n", decoded)
    assert (tmp_path / "out.png").read_bytes() == b"theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "out.png"]  # no temporary file left
