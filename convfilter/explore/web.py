"""The explorer's web server: the standard library's ``ThreadingHTTPServer`` on 127.0.0.1, one token.

As Jupyter's server does, it listens on loopback only, prints a URL holding
a random token, and refuses every request that does not carry it (in the
query, or in the cookie the page sets on its first load): 401 without a
token, 403 with a wrong one, and 403 for a ``Host`` that is not this
loopback address (a page elsewhere cannot reach it through DNS rebinding).
The page is the files in ``static/``; everything else is JSON, PNG or an
upload. No request names a file: pictures are keys the server made.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import traceback
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qsl, urlsplit

from convfilter.errors import ArgumentError, ConvFilterError
from convfilter.explore.session import Explorer, window
from convfilter.explore.state import ExploreState, QueryError
from convfilter.io.pixels import RANGE_MODES
from convfilter.ops.borders import BORDERS
from convfilter.ops.kernels import KERNELS

HOST = "127.0.0.1"
STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/style.css": ("style.css", "text/css; charset=utf-8"),
}
"""The page's files: URL path -> (file in ``static/``, content type)."""
COOKIE = "convfilter-explore-token"


class ExploreServer(ThreadingHTTPServer):
    """The HTTP server of one explorer: its :class:`Explorer`, its token and its page."""

    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, explorer: Explorer, port: int = 0, token: str | None = None, log=None) -> None:
        self.explorer = explorer
        self.token = token or secrets.token_urlsafe(24)
        self.log = log
        self.files = {path: _read_static(name) for path, (name, _) in STATIC.items()}
        super().__init__((HOST, port), ExploreHandler)

    @property
    def port(self) -> int:
        """The port bound (the one picked when asked for 0)."""
        return self.server_address[1]

    @property
    def url(self) -> str:
        """The page's address with the token, to print and open."""
        return f"http://{HOST}:{self.port}/?token={self.token}"

    def allowed_hosts(self) -> tuple[str, ...]:
        """``Host`` headers this server answers: its own loopback address, by number or by name."""
        return (f"{HOST}:{self.port}", f"localhost:{self.port}")


class ExploreHandler(BaseHTTPRequestHandler):
    """One request: checked (host, token), then routed to the page, the JSON API or a PNG."""

    server: ExploreServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK wait between
    server_version = "convfilter-explore"

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        if self.server.log is not None:  # the path is logged without its query: the token stays out
            self.server.log(f"{self.command} {urlsplit(self.path).path} {args[1] if len(args) > 1 else ''}")

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._handle(self._get)

    def do_POST(self) -> None:  # noqa: N802
        self._handle(self._post)

    def _handle(self, route: Callable[[str, dict], None]) -> None:
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        if self.headers.get("Host") not in self.server.allowed_hosts():
            self._send_error(HTTPStatus.FORBIDDEN, "this server answers only at its loopback address")
            return
        given = query.pop("token", None) or _cookie(self.headers.get("Cookie", ""))
        if not given:
            self._send_error(
                HTTPStatus.UNAUTHORIZED, "a token is needed: open the URL convfilter explore printed"
            )
            return
        if not hmac.compare_digest(given.encode(), self.server.token.encode()):
            self._send_error(HTTPStatus.FORBIDDEN, "wrong token: open the URL convfilter explore printed")
            return
        try:
            route(parts.path, query)
        except (QueryError, ArgumentError, ConvFilterError) as exc:
            self._send_error(HTTPStatus.BAD_REQUEST, _one_line(exc))
        except Exception as exc:  # the server goes on; the page shows one line
            if self.server.log is not None:
                self.server.log("".join(traceback.format_exception(exc)))
            self._send_error(
                HTTPStatus.INTERNAL_SERVER_ERROR, f"Error: {type(exc).__name__}: {exc}".splitlines()[0]
            )

    # --- routes ----------------------------------------------------------------------------------

    def _get(self, path: str, query: dict) -> None:
        explorer = self.server.explorer
        if path in STATIC:
            extra = {}
            if path == "/":
                extra["Set-Cookie"] = f"{COOKIE}={self.server.token}; HttpOnly; SameSite=Strict; Path=/"
            self._send(HTTPStatus.OK, self.server.files[path], STATIC[path][1], extra)
        elif path == "/api/meta":
            self._send_json(meta(explorer))
        elif path == "/api/view":
            state = ExploreState.from_query(query, explorer.default_image)
            result = explorer.run(state)
            # The PNG travels inline: the new output is on screen after one round trip, not two.
            self._send_json({**result.summary(), "png": base64.b64encode(result.png).decode("ascii")})
        elif path.startswith("/api/input/") and path.endswith(".png"):
            self._send_png(explorer.picture(path[len("/api/input/") : -4]).png)
        elif path.startswith(("/api/output/", "/api/diverging/")) and path.endswith(".png"):
            kind, key = path[len("/api/") : -4].split("/", 1)
            result = explorer.result(key)
            if result is None:
                self._send_error(
                    HTTPStatus.NOT_FOUND,
                    "that result is no longer kept: change a control to compute it again",
                )
                return
            self._send_png(result.png if kind == "output" else result.diverging_png)
        elif path == "/api/pixel":
            result = explorer.result(query.get("key", ""))
            if result is None:
                self._send_error(HTTPStatus.NOT_FOUND, "that result is no longer kept")
                return
            self._send_json(window(result, _int(query, "row"), _int(query, "col")))
        else:
            self._send_error(HTTPStatus.NOT_FOUND, f"no page {path}")

    def _post(self, path: str, query: dict) -> None:
        if path != "/api/upload":
            self._send_error(HTTPStatus.NOT_FOUND, f"no page {path}")
            return
        explorer = self.server.explorer
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._send_error(HTTPStatus.LENGTH_REQUIRED, "an upload needs a Content-Length")
            return
        if length > explorer.max_upload:
            self.close_connection = True  # the body is not read
            self._send_error(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"Error: uploaded.png: is {length:,} bytes; the limit is {explorer.max_upload:,}",
            )
            return
        picture = explorer.upload(self.rfile.read(length))
        self._send_json({"image": picture.key, "shape": list(picture.shape)})

    # --- replies ---------------------------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, data: dict, status: int = HTTPStatus.OK) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _send_png(self, body: bytes) -> None:
        self._send(HTTPStatus.OK, body, "image/png")

    def _send_error(self, status: int, message: str) -> None:
        if not message.startswith("Error:"):
            message = f"Error: {message}"
        self._send_json({"error": message}, status)


def meta(explorer: Explorer) -> dict:
    """What the page's controls offer: pictures, named kernels with their options, borders, ranges."""
    return {
        "images": explorer.images(),
        "default_image": explorer.default_image,
        "kernels": {name: {"options": list(k.options), "summary": k.summary} for name, k in KERNELS.items()},
        "borders": list(BORDERS),
        "ranges": list(RANGE_MODES),
        "max_upload": explorer.max_upload,
    }


def _one_line(exc: Exception) -> str:
    """``Error: <what>: <message>`` for the page, as the command line prints it."""
    key = getattr(exc, "key", None)
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"Error: {key}: {text}" if key else f"Error: {text}"


def _int(query: dict, key: str) -> int:
    try:
        return int(query.get(key, ""))
    except ValueError:
        raise QueryError(key, f"{key} must be an integer. Received: {key}={query.get(key)!r}") from None


def _cookie(header: str) -> str | None:
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value
    return None


def _read_static(name: str) -> bytes:
    return resources.files("convfilter.explore").joinpath("static", name).read_bytes()


def serve(server: ExploreServer) -> None:
    """Serve until interrupted (Ctrl-C raises in the main thread), then close the listening socket."""
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
