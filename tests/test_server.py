"""The warm server: every command gives the same bytes, text and exit code through it as without it.

Each server here runs in a private runtime directory of the test's own
(``CONVFILTER_RUNTIME_DIR``), is started by the test and always stopped, also
when the test fails. The reference for every command of the table is the same
command run in its own process (``--no-server``), in a twin directory; once that
table holds, the other tests take their reference images from the command run in
this process (``helpers.invoke``), which has TensorFlow loaded already.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import installed_convfilter, invoke, warm_server
from PIL import Image

from convfilter import __version__
from convfilter.server import protocol

# Servers, clusters and subprocesses: the full suite only; one worker runs the module's warm server.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("warm_server")]

SAMPLE = Path(__file__).resolve().parent.parent / "sample_images" / "ascent.png"


def _env(runtime: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "CONVFILTER_SERVER"}
    env["CONVFILTER_RUNTIME_DIR"] = str(runtime)
    env.update(extra)
    return env


def _run(exe, args, env, cwd=None, stdin=None, umask=None):
    def preexec():
        if umask is not None:
            os.umask(umask)

    return subprocess.run(
        [str(exe), *args], env=env, cwd=cwd, input=stdin, capture_output=True, timeout=120, preexec_fn=preexec
    )


def _status(exe, env) -> dict[str, str]:
    result = _run(exe, ["server", "status"], env)
    rows = {}
    for line in result.stdout.decode().splitlines()[1:]:
        name, _, value = line.strip().partition(":")
        rows[name] = value.strip()
    rows["rc"] = str(result.returncode)
    return rows


def _jobs(exe, env) -> int:
    return int(_status(exe, env)["jobs served"])


@contextlib.contextmanager
def running_server(exe, runtime: Path, *args: str):
    """Start a detached server in ``runtime``; stop it (and kill it if need be) afterwards."""
    pid = None
    try:
        with warm_server(runtime, *args) as env:
            pid = int(_status(exe, env)["pid"])
            yield env, pid
    finally:
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    exe = installed_convfilter()
    with running_server(exe, tmp_path_factory.mktemp("runtime")) as (env, pid):
        yield exe, env, pid


def _twin_dirs(tmp_path: Path) -> tuple[Path, Path]:
    """Two identical working directories: one for the server's run, one for the local run."""
    rng = np.random.default_rng(5)
    first = tmp_path / "served"
    (first / "in").mkdir(parents=True)
    for name in ("a", "b", "c"):
        Image.fromarray(rng.integers(0, 256, (40, 50), dtype=np.uint8)).save(first / "in" / f"{name}.png")
    (first / "in" / "broken.png").write_bytes(b"not an image")
    shutil.copy(SAMPLE, first / "ascent.png")
    second = tmp_path / "local"
    shutil.copytree(first, second)
    return first, second


COMMANDS = {
    "single file": (["blur", "ascent.png", "out.png", "--stride", "2", "1"], None),
    "single file -v": (["gaussian", "ascent.png", "out.png", "--size", "5", "-v"], None),
    "batch with a broken file": (["edge", "in", "-r", "-o", "out"], None),
    "batch --json": (["sharpen", "in/a.png", "in/b.png", "in/broken.png", "-o", "out", "--json"], None),
    "stdin to stdout": (["edge", "-", "-", "--padding", "same"], SAMPLE.read_bytes()),
    "files-from stdin": (["blur", "--files-from", "-", "-o", "out"], b"in/a.png\nin/c.png\n"),
    "matrix output": (["custom", "--kernel", "1,-1", "in/a.png", "out.npy"], None),
    "usage error": (["blur", "--stride", "0", "ascent.png", "out.png"], None),
    "missing input": (["blur", "nope.png", "out.png"], None),
    "help": (["--help"], None),
    "kernel help": (["blur", "--help"], None),
    "version": (["--version"], None),
    "pool": (["pool", "max", "ascent.png", "out.png", "--size", "3", "3"], None),
    "chain": (["chain", "ascent.png", "out.png", "blur", "--", "edge", "--padding", "same"], None),
}


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_same_bytes_text_and_exit_code_as_without_the_server(server, tmp_path, name):
    exe, env, _pid = server
    args, stdin = COMMANDS[name]
    served_dir, local_dir = _twin_dirs(tmp_path)
    before = _jobs(exe, env)
    served = _run(exe, args, env, cwd=served_dir, stdin=stdin)
    assert _jobs(exe, env) == before + 1, "the command did not go through the server"
    local = _run(exe, ["--no-server", *args], env, cwd=local_dir, stdin=stdin)
    assert served.returncode == local.returncode
    if "--json" in args:  # one line per file, in the order the files finish
        assert sorted(served.stdout.splitlines()) == sorted(local.stdout.splitlines())
    else:
        assert served.stdout == local.stdout
    assert served.stderr == local.stderr
    assert _tree(served_dir) == _tree(local_dir)


def test_outputs_get_the_clients_umask(server, tmp_path):
    exe, env, _pid = server
    for umask, mode in ((0o077, 0o600), (0o022, 0o644)):
        out = tmp_path / f"out-{umask:o}.png"
        result = _run(exe, ["blur", str(SAMPLE), str(out)], env, umask=umask)
        assert result.returncode == 0, result.stderr
        assert out.stat().st_mode & 0o777 == mode


def test_concurrent_clients_each_get_their_own_output_and_exit_code(server, tmp_path):
    exe, env, _pid = server
    reference = tmp_path / "reference.png"
    assert invoke("edge", SAMPLE, reference).exit_code == 0
    clients = []
    for number in range(6):
        args = ["edge", str(SAMPLE), str(tmp_path / f"out{number}.png")]
        if number == 5:
            args = ["edge", "missing.png", "x.png"]
        clients.append(subprocess.Popen([str(exe), *args], env=env, cwd=tmp_path, stderr=subprocess.PIPE))
    results = [(client.wait(timeout=120), client.stderr.read()) for client in clients]
    for number, (code, stderr) in enumerate(results[:5]):
        assert code == 0, stderr
        assert (tmp_path / f"out{number}.png").read_bytes() == reference.read_bytes()
    assert results[5] == (1, b"Error: missing.png: no such file\n")


def _big_folder(root: Path, count: int = 40) -> Path:
    folder = root / "in"
    folder.mkdir()
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (1024, 1024), dtype=np.uint8)
    for number in range(count):
        Image.fromarray(np.roll(pixels, number)).save(folder / f"{number:03d}.png", compress_level=0)
    return folder


def _wait_for_outputs(folder: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not (folder.exists() and any(p.suffix == ".png" for p in folder.iterdir())):
        assert time.monotonic() < deadline, "no output appeared"
        time.sleep(0.02)


def _complete_outputs(folder: Path) -> int:
    names = [p.name for p in folder.iterdir()]
    assert not [n for n in names if n.startswith(".convfilter-")], names
    for name in names:
        with Image.open(folder / name) as image:
            image.load()
    return len(names)


def test_ctrl_c_in_a_client_cancels_its_batch_on_the_server(server, tmp_path):
    exe, env, _pid = server
    folder = _big_folder(tmp_path)
    client = subprocess.Popen(
        [str(exe), "blur", str(folder), "-r", "-o", str(tmp_path / "out")],
        env=env,
        stderr=subprocess.PIPE,
    )
    _wait_for_outputs(tmp_path / "out")
    client.send_signal(signal.SIGINT)
    assert client.wait(timeout=60) == 130
    assert b"Interrupted:" in client.stderr.read()
    assert _complete_outputs(tmp_path / "out") < 40
    assert _run(exe, ["blur", str(SAMPLE), str(tmp_path / "after.png")], env).returncode == 0


def test_a_killed_client_has_its_batch_cancelled_and_no_temporary_files_left(server, tmp_path):
    exe, env, _pid = server
    folder = _big_folder(tmp_path)
    before = _jobs(exe, env)
    client = subprocess.Popen(
        [str(exe), "blur", str(folder), "-r", "-o", str(tmp_path / "out")], env=env, stderr=subprocess.DEVNULL
    )
    _wait_for_outputs(tmp_path / "out")
    client.kill()
    client.wait(timeout=10)
    deadline = time.monotonic() + 60
    while _jobs(exe, env) == before:  # the server finishes the cancelled command
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert _complete_outputs(tmp_path / "out") < 40


def test_the_client_imports_no_heavy_module(server, tmp_path):
    exe, env, _pid = server
    code = (
        "import sys\n"
        "from convfilter.server import client\n"
        f"code = client.forward(['blur', {str(SAMPLE)!r}, {str(tmp_path / 'o.png')!r}])\n"
        "heavy = sorted({'numpy', 'PIL', 'click', 'tensorflow', 'keras'} & {m.split('.')[0] for m in sys.modules})\n"
        "print(code, heavy)\n"
    )
    # Run outside the source tree, so that the installed package is the one imported (as CI installs it).
    result = subprocess.run(
        [str(exe.with_name("python")), "-c", code],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout == "0 []\n", result.stderr
    assert (tmp_path / "o.png").exists()


def test_status_reports_the_server(server):
    exe, env, pid = server
    status = _status(exe, env)
    assert status["rc"] == "0"
    assert int(status["pid"]) == pid
    assert status["version"] == __version__
    assert "MiB resident" in status["memory"]


def test_a_killed_server_is_not_waited_on_and_the_next_call_is_correct(convfilter_exe, tmp_path):
    runtime = tmp_path / "rt"
    with running_server(convfilter_exe, runtime) as (env, pid):
        os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        time.sleep(0.2)
        served = _run(convfilter_exe, ["blur", str(SAMPLE), str(tmp_path / "a.png"), "-v"], env)
        assert invoke("blur", SAMPLE, tmp_path / "b.png").exit_code == 0
        assert served.returncode == 0
        assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
        assert b"running here, not on the server: no server answers" in served.stderr
        assert not any(runtime.glob("*.sock"))
        assert _status(convfilter_exe, env)["rc"] == "1"


def _fake_server(path: Path, greeting: dict | None):
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(4)
    if greeting is None:
        return listener, None  # never accepts: a hung server

    def answer():
        with contextlib.suppress(OSError):
            conn, _ = listener.accept()
            protocol.send(conn, greeting)
            time.sleep(5)
            conn.close()

    import threading

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    return listener, thread


@pytest.mark.parametrize(
    "greeting, said",
    [
        ({"identity": "9.9.9:other:0", "pid": 1}, b"runs another convfilter version or install"),
        (None, b"did not answer"),
    ],
    ids=["other version", "hung"],
)
def test_a_foreign_or_hung_server_is_not_used(convfilter_exe, tmp_path, greeting, said):
    runtime = tmp_path / "rt"
    runtime.mkdir(mode=0o700)
    env = _env(runtime)
    listener, _thread = _fake_server(Path(_socket(convfilter_exe, env)), greeting)
    try:
        result = _run(convfilter_exe, ["blur", str(SAMPLE), str(tmp_path / "o.png"), "-v"], env)
        assert result.returncode == 0, result.stderr
        assert said in result.stderr  # the client gave up on the hung server and ran here
        assert (tmp_path / "o.png").exists()
    finally:
        listener.close()


def _socket(exe: Path, env: dict) -> str:
    """The socket path this install uses in ``env``'s runtime directory (asked of the installed package).

    The command runs in ``/``: from the source tree, ``python -c`` would import the
    checkout's package, whose install (and so its socket) differs from a non-editable one.
    """
    code = "from convfilter.server import paths; print(paths.socket_path(paths.runtime_dir()))"
    return subprocess.run(
        [str(exe.with_name("python")), "-c", code],
        env=env,
        cwd="/",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_an_unsafe_runtime_directory_is_never_used(convfilter_exe, tmp_path):
    runtime = tmp_path / "open"
    runtime.mkdir()
    runtime.chmod(0o755)
    env = _env(runtime)
    start = _run(convfilter_exe, ["server", "start"], env)
    assert start.returncode == 1
    assert start.stderr.decode() == (
        f"Error: {runtime}: is open to other users (mode 0755) (the server's socket needs a private directory)\n"
    )
    result = _run(convfilter_exe, ["blur", str(SAMPLE), str(tmp_path / "o.png"), "-v"], env)
    assert result.returncode == 0
    assert (
        b"running here, not on the server: " + str(runtime).encode() + b": is open to other users"
        in result.stderr
    )
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "private")
    (tmp_path / "private").mkdir(mode=0o700)
    assert b"is a symbolic link" in _run(convfilter_exe, ["server", "start"], _env(link)).stderr


def test_auto_starts_a_server_on_first_use_and_off_bypasses_it(convfilter_exe, tmp_path):
    runtime = tmp_path / "rt"
    runtime.mkdir(mode=0o700)
    env = _env(runtime)
    try:
        off = _run(
            convfilter_exe,
            ["blur", str(SAMPLE), str(tmp_path / "a.png")],
            {**env, "CONVFILTER_SERVER": "off"},
        )
        assert off.returncode == 0
        assert _status(convfilter_exe, env)["rc"] == "1", "nothing starts behind the user's back"
        auto = _run(
            convfilter_exe,
            ["blur", str(SAMPLE), str(tmp_path / "b.png")],
            {**env, "CONVFILTER_SERVER": "auto"},
        )
        assert auto.returncode == 0, auto.stderr
        assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
        assert _jobs(convfilter_exe, env) == 1
    finally:
        _run(convfilter_exe, ["server", "stop"], env)
    bad = _run(convfilter_exe, ["--help"], {**env, "CONVFILTER_SERVER": "yes"})
    assert (bad.returncode, bad.stderr) == (
        2,
        b"Error: CONVFILTER_SERVER: expected 'auto' or 'off' (or unset), got 'yes'\n",
    )


def test_idle_timeout_stops_the_server(convfilter_exe, tmp_path):
    runtime = tmp_path / "rt"
    with running_server(convfilter_exe, runtime, "--idle-timeout", "1s") as (env, _pid):
        deadline = time.monotonic() + 30
        while _status(convfilter_exe, env)["rc"] == "0":
            assert time.monotonic() < deadline, "the idle server did not stop"
            time.sleep(0.2)
        assert not any(runtime.glob("*.sock"))


def test_start_twice_and_stop_twice(server):
    exe, env, pid = server
    again = _run(exe, ["server", "start"], env)
    assert again.stdout.decode() == f"convfilter server: already running (pid {pid})\n"
    runtime = Path(env["CONVFILTER_RUNTIME_DIR"]).parent / "empty-rt"
    runtime.mkdir(mode=0o700, exist_ok=True)
    stop = _run(exe, ["server", "stop"], _env(runtime))
    assert (stop.returncode, stop.stdout) == (0, b"convfilter server: not running\n")


def _as_nobody() -> list[str]:
    if os.getuid() != 0:
        pytest.skip("switching to another user needs root (these tests run as an ordinary user)")
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]


def test_a_connection_from_another_user_is_refused(convfilter_exe):
    prefix = _as_nobody()
    # Under /tmp itself, so that the other user can reach the socket once it is opened up below.
    runtime = Path(tempfile.mkdtemp(prefix="convfilter-peer-"))
    try:
        with running_server(convfilter_exe, runtime) as (env, _pid):
            sock = _socket(convfilter_exe, env)
            # Open the directory and socket to everyone for this one check: only SO_PEERCRED stands in the way.
            runtime.chmod(0o711)
            os.chmod(sock, 0o666)
            code = (
                "import socket\n"
                "s = socket.socket(socket.AF_UNIX)\n"
                "s.settimeout(10)\n"
                f"s.connect({sock!r})\n"
                "print(repr(s.recv(100)))\n"
            )
            result = subprocess.run(
                [*prefix, sys.executable, "-c", code], capture_output=True, text=True, timeout=60
            )
            assert result.stdout == "b''\n", result.stderr
            log = next(runtime.glob("*.log")).read_text()
            assert "refused a connection from uid 65534" in log
            runtime.chmod(0o700)
            assert _status(convfilter_exe, env)["rc"] == "0"
    finally:
        shutil.rmtree(runtime, ignore_errors=True)


def test_the_socket_is_private(server):
    exe, env, _pid = server
    runtime = Path(env["CONVFILTER_RUNTIME_DIR"])
    assert runtime.stat().st_mode & 0o777 == 0o700
    sockets = list(runtime.glob("*.sock"))
    assert len(sockets) == 1
    assert sockets[0].stat().st_mode & 0o777 == 0o600


def test_a_command_under_resource_limits_runs_here_where_they_hold(server, tmp_path):
    """`ulimit -f` and its kin bind the client's process; the server's would not have them."""
    import resource

    exe, env, _pid = server
    before = _jobs(exe, env)

    def limited():
        resource.setrlimit(resource.RLIMIT_FSIZE, (50_000_000, 50_000_000))

    done = subprocess.run(
        [str(exe), "blur", str(SAMPLE), str(tmp_path / "o.png"), "-v"],
        env=env,
        capture_output=True,
        timeout=120,
        preexec_fn=limited,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.decode().splitlines()[0] == (
        "convfilter: running here, not on the server: this command runs under resource limits (ulimit -f) "
        "that the server does not have"
    )
    assert _jobs(exe, env) == before  # the server did none of it
    assert (tmp_path / "o.png").exists()


def test_a_command_that_names_the_clients_own_files_runs_here(server, tmp_path):
    """`<(cat a.png)` is /dev/fd/63 and /dev/stdin is fd 0 of the client: in the server those names
    would be the server's own files, so such a command runs in the client's process, as without it."""
    exe, env, _pid = server
    shutil.copy(SAMPLE, tmp_path / "a.png")
    assert invoke("blur", tmp_path / "a.png", tmp_path / "ref.png").exit_code == 0
    before = _jobs(exe, env)
    script = f"{exe} blur <(cat a.png) fd.png -v && {exe} blur /dev/stdin stdin.png -v < a.png"
    done = subprocess.run(
        ["bash", "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stderr.splitlines() if "not on the server" in line]
    assert len(notes) == 2, done.stderr
    assert re.fullmatch(
        r"convfilter: running here, not on the server: /dev/fd/\d+ names a file of this process, "
        r"which the server would open as its own",
        notes[0],
    )
    assert notes[1].startswith("convfilter: running here, not on the server: /dev/stdin names a file")
    assert _jobs(exe, env) == before  # the server did none of it
    for name in ("fd.png", "stdin.png"):
        assert (tmp_path / name).read_bytes() == (tmp_path / "ref.png").read_bytes()
