"""``convfilter explore`` without a browser: the URL state, the computed views against the NumPy
references and the command line, the numbers behind a pixel, the Keras code, and the HTTP server
(token, host, uploads, loopback, a clean stop)."""

from __future__ import annotations

import http.client
import io
import json
import shlex
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
from helpers import invoke, read, save
from reference import correlate, tf_same_padding
from reference_pool import pool
from reference_transpose import scatter_add

from convfilter.explore.session import Explorer, window
from convfilter.explore.state import ExploreState, QueryError
from convfilter.explore.web import ExploreServer
from convfilter.server.client import forwardable

NP_MODES = {
    "zero": "constant",
    "reflect": "reflect",
    "symmetric": "symmetric",
    "replicate": "edge",
    "wrap": "wrap",
}


def state(**query) -> ExploreState:
    return ExploreState.from_query({k: str(v) for k, v in query.items()})


@pytest.fixture
def small_png(tmp_path: Path) -> Path:
    """An 11x14 8-bit PNG of seeded random values: every window differs."""
    path = tmp_path / "small.png"
    save(path, (11, 14), seed=5)
    return path


# --- the state in the URL ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        {"kernel": "blur", "stride": "2,1"},
        {"kernel": "gaussian", "size": "7", "sigma": "2.5", "padding": "same", "border": "reflect"},
        {
            "kernel": "random",
            "seed": "7",
            "size": "5",
            "dilation": "2,3",
            "padding": "1,2,3,4",
            "bias": "-1.5",
        },
        {"kernel": "1,0,-1;2,0,-2", "normalize": "0", "convolve": "1", "range": "abs"},
        {"kernel": "blur", "transpose": "1", "stride": "2,2", "padding": "same", "output_padding": "1,0"},
        {"pool": "avg", "size": "3", "stride": "2,1", "padding": "same"},
    ],
)
def test_a_query_round_trips(query):
    assert state(**query).to_query() == {k: v for k, v in query.items() if v != "0"}


@pytest.mark.parametrize(
    "query, key, message",
    [
        (
            {"stride": "0,1"},
            "stride",
            "The `stride` argument must be a tuple of 2 integers >= 1. Received: stride=(0, 1)",
        ),
        (
            {"stride": "a"},
            "stride",
            "The `stride` argument must be a tuple of 2 integers >= 1. Received: stride='a'",
        ),
        (
            {"padding": "wide"},
            "padding",
            "The `padding` argument must be one of 'valid', 'same', 'full' or numbers (N, PY,PX or TOP,BOTTOM,LEFT,RIGHT, each 0..65536). Received: padding='wide'",
        ),
        (
            {"kernel": "@/etc/passwd"},
            "kernel",
            "the page reads no files: give the weights inline. Received: kernel='@/etc/passwd'",
        ),
        (
            {"kernel": "edge", "size": "5"},
            "size",
            "edge is a fixed 3x3 kernel and takes no size (blur, gaussian, identity and random take --size)",
        ),
        (
            {"kernel": "1,2;3"},
            "kernel",
            "kernel rows differ in length: row 1 has 2 values, row 2 has 1 (received '1,2;3')",
        ),
        ({"bias": "nan"}, "bias", "bias must be a finite number. Received: bias='nan'"),
        (
            {"pool": "max", "dilation": "2"},
            "dilation",
            "dilation applies to convolutions, not to max pooling",
        ),
        ({"pool": "min"}, "pool", "pool must be one of max, avg. Received: pool='min'"),
        (
            {"output_padding": "1,1"},
            "output_padding",
            "output_padding applies to a transposed convolution (transpose=1)",
        ),
        ({"convolve": "maybe"}, "convolve", "convolve must be 1 or 0. Received: convolve='maybe'"),
    ],
)
def test_a_bad_query_names_its_key_and_echoes_the_value(query, key, message):
    with pytest.raises(QueryError) as info:
        ExploreState.from_query(query)
    assert (info.value.key, str(info.value)) == (key, message)


def test_the_command_line_quotes_and_lists_only_what_differs():
    view = state(kernel="1,0,-1", padding="1,2", bias="0.5", transpose=0, convolve=1)
    assert view.command_line("my image.png") == (
        "convfilter custom --kernel 1,0,-1 'my image.png' out.png --padding 1,2 --convolve --bias 0.5"
    )
    assert state(kernel="random").command_line("a.png") == "convfilter random a.png out.png --seed 0"
    assert state(pool="max", size=3).command_line("a.png") == "convfilter pool max a.png out.png --size 3"


def test_explore_is_never_forwarded_to_the_warm_server():
    assert not forwardable(["explore", "a.png"])
    assert not forwardable(["-v", "explore"])
    assert forwardable(["blur", "explore.png", "out.png"])


# --- the views against the references and the command line ---------------------------------------


def reference(x: np.ndarray, view: ExploreState) -> np.ndarray:
    """What the layer must compute, from the NumPy references (no convfilter code)."""
    op_query = view.to_query()
    if view.pool:
        stride = view.stride or (view.size or 2,) * 2
        return pool(x, view.pool, view.size or 2, stride, view.padding)
    k = np.asarray(view.grid, dtype=np.float64)
    if view.convolve:
        k = k[::-1, ::-1]
    stride, dilation = view.stride or (1, 1), view.dilation
    if view.transpose:
        return scatter_add(x, k, stride, view.padding, dilation, view.output_padding, view.bias)
    padding = view.padding
    if padding == "same":
        pads = [tf_same_padding(x.shape[a], k.shape[a], stride[a], dilation[a]) for a in (0, 1)]
    elif padding == "full":
        pads = [(dilation[a] * (k.shape[a] - 1),) * 2 for a in (0, 1)]
    elif padding == "valid":
        pads = [(0, 0), (0, 0)]
    else:
        pads = [padding[:2], padding[2:]]
    padded = np.pad(x, pads, mode=NP_MODES[op_query.get("border", "zero")])
    return correlate(padded, k, stride, "valid", dilation, view.bias)


VIEWS = [
    {"kernel": "blur", "stride": "2,1"},
    {"kernel": "sobel-x", "stride": "2,2", "padding": "same", "border": "reflect", "dilation": "2,2"},
    {"kernel": "gaussian", "size": "5", "sigma": "1.5", "padding": "full", "border": "wrap"},
    {"kernel": "random", "seed": "3", "padding": "2,1,0,3", "bias": "-20", "range": "abs"},
    {"kernel": "1,2,0;0,-1,3", "convolve": "1", "padding": "same", "border": "symmetric", "range": "rescale"},
    {
        "kernel": "1,2;3,4",
        "transpose": "1",
        "stride": "2,3",
        "padding": "same",
        "output_padding": "1,2",
        "bias": "1",
    },
    {"kernel": "emboss", "transpose": "1", "stride": "3,2", "dilation": "2,1"},
    {"pool": "max", "size": "3", "stride": "2,1", "padding": "same"},
    {"pool": "avg", "size": "2", "padding": "same"},
]


@pytest.mark.parametrize("query", VIEWS, ids=lambda q: ",".join(f"{k}={v}" for k, v in q.items()))
def test_a_view_is_the_layer_and_the_cli_writes_the_same_png(small_png, tmp_path, query):
    explorer = Explorer(str(small_png))
    view = ExploreState.from_query(query)
    result = explorer.run(view)
    expected = reference(read(small_png).astype(np.float64), view)
    assert result.shape == expected.shape
    np.testing.assert_allclose(result.values, expected, rtol=1e-5, atol=1e-3)
    # The command line the page shows writes the very PNG the page shows, byte for byte.
    out = tmp_path / "out.png"
    words = shlex.split(result.summary()["command"].replace(" out.png", f" {shlex.quote(str(out))}"))
    assert words[0] == "convfilter"
    ran = invoke(*words[1:])
    assert ran.exit_code == 0, ran.output
    assert out.read_bytes() == result.png


def test_a_range_change_maps_the_kept_result_again(small_png):
    explorer = Explorer(str(small_png))
    first = explorer.run(state(kernel="sobel-x"))
    again = explorer.run(state(kernel="sobel-x", range="abs"))
    assert again.values is first.values  # the layer did not run again
    assert again.png != first.png and again.range_mode == "abs"


def test_the_diverging_view_puts_zero_at_mid_grey():
    from convfilter.explore.session import diverging_pixels

    rgb = diverging_pixels(np.array([[-4.0, 0.0, 2.0, 4.0]], dtype=np.float32))
    assert rgb[0].tolist() == [[30, 60, 200], [128, 128, 128], [164, 79, 79], [200, 30, 30]]


# --- the numbers behind one output pixel ---------------------------------------------------------


@pytest.mark.parametrize("query", VIEWS[:7], ids=lambda q: ",".join(f"{k}={v}" for k, v in q.items()))
def test_every_pixels_products_sum_to_the_layers_value(small_png, query):
    explorer = Explorer(str(small_png))
    view = ExploreState.from_query(query)
    result = explorer.run(view)
    x = read(small_png).astype(np.float64)
    h, w = result.shape
    for row in range(h):
        for col in range(w):
            numbers = window(result, row, col)
            total = sum(t["value"] * t["weight"] for t in numbers["taps"]) + view.bias
            assert numbers["value"] == float(result.values[row, col])
            assert total == pytest.approx(numbers["value"], rel=1e-5, abs=1e-3), (row, col)
            for t in numbers["taps"]:
                if t["inside"]:
                    assert t["value"] == x[t["row"], t["col"]]


def test_a_window_names_the_padded_positions_with_dilation_gaps(small_png):
    explorer = Explorer(str(small_png))
    result = explorer.run(state(kernel="sobel-x", padding="same", dilation="2,2", stride="2,2"))
    numbers = window(result, 0, 0)
    top, left = tf_same_padding(11, 3, 2, 2)[0], tf_same_padding(14, 3, 2, 2)[0]
    assert (top, left) == (2, 1)
    rows, cols = (-2, 0, 2), (-1, 1, 3)  # every second pixel: the gaps of dilation 2
    assert [(t["row"], t["col"]) for t in numbers["taps"]] == [(r, c) for r in rows for c in cols]
    assert [t["inside"] for t in numbers["taps"]] == [r >= 0 and c >= 0 for r in rows for c in cols]
    assert all(t["value"] == 0 for t in numbers["taps"] if not t["inside"])


def test_a_pool_window_counts_only_real_pixels(small_png):
    explorer = Explorer(str(small_png))
    x = read(small_png).astype(np.float64)
    result = explorer.run(state(pool="avg", size=2, padding="same"))
    h, w = result.shape
    numbers = window(result, h - 1, w - 1)  # 11 rows: the last window hangs over the bottom
    real = [t["value"] for t in numbers["taps"] if t["inside"]]
    assert len(real) == 2 and numbers["value"] == pytest.approx(np.mean(real))
    assert numbers["value"] == pytest.approx(pool(x, "avg", 2, None, "same")[h - 1, w - 1])


def test_a_pixel_outside_the_output_is_refused(small_png):
    result = Explorer(str(small_png)).run(state(kernel="blur"))
    with pytest.raises(QueryError, match=r"pixel \(9, 0\) is outside the 9x12 output"):
        window(result, 9, 0)


# --- the Keras code ------------------------------------------------------------------------------


@pytest.mark.parametrize("query", VIEWS, ids=lambda q: ",".join(f"{k}={v}" for k, v in q.items()))
def test_the_keras_code_computes_the_same_values_and_pixels(small_png, query):
    explorer = Explorer(str(small_png))
    result = explorer.run(ExploreState.from_query(query))
    code = result.summary()["keras_code"]
    assert code.startswith("import keras\n")
    scope: dict = {}
    exec(compile(code, "keras_code", "exec"), scope)  # the panel's code, run as a user would
    np.testing.assert_allclose(scope["y"], result.values, rtol=1e-5, atol=1e-3)
    shown = read(io.BytesIO(result.png))
    ties = np.abs(np.asarray(scope["y"], dtype=np.float64) % 1 - 0.5) < 1e-3
    assert np.array_equal(scope["pixels"][~ties], shown[~ties])


# --- the HTTP server -----------------------------------------------------------------------------


@pytest.fixture
def served(small_png):
    """An explorer's server on 127.0.0.1, a free port, in a thread; stopped after the test."""
    server = ExploreServer(Explorer(str(small_png), max_upload=4096, max_pixels=400), 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=30)


def request(server, path, *, method="GET", body=None, headers=None, token=True):
    if token:
        path += ("&" if "?" in path else "?") + f"token={server.token if token is True else token}"
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type"), response.read()
    finally:
        conn.close()


def test_the_server_listens_on_loopback_only(served):
    assert served.server_address[0] == "127.0.0.1"
    assert served.url == f"http://127.0.0.1:{served.port}/?token={served.token}"
    assert len(served.token) >= 32


@pytest.mark.parametrize("path", ["/", "/api/meta", "/api/view?kernel=blur", "/static/app.js"])
def test_without_the_token_every_request_is_refused(served, path):
    status, _, body = request(served, path, token=False)
    assert status == 401 and b"Error: a token is needed" in body
    status, _, body = request(served, path, token="not-the-token")
    assert status == 403 and b"Error: wrong token" in body


def test_a_foreign_host_header_is_refused(served):
    status, _, body = request(served, "/", headers={"Host": f"evil.example:{served.port}"})
    assert status == 403 and b"loopback" in body


def test_the_page_and_its_hooks_are_served(served):
    status, content_type, body = request(served, "/")
    assert status == 200 and content_type.startswith("text/html")
    for hook in (
        "output",
        "output-shape",
        "stride-y",
        "stride-x",
        "dot-product",
        "keras-code",
        "upload",
        "error",
    ):
        assert f'data-testid="{hook}"'.encode() in body
    assert b"http://" not in body and b"https://" not in body  # nothing fetched from elsewhere
    for path in ("/static/app.js", "/static/style.css"):
        status, _, script = request(served, path)
        assert status == 200 and b"https://" not in script


@pytest.mark.parametrize(
    "path", ["/static/../state.py", "/static/%2e%2e/state.py", "/api/input/..%2fstate.py.png", "/etc/passwd"]
)
def test_no_path_reaches_the_file_system(served, path):
    status, _, body = request(served, path)
    assert status in (400, 404)
    assert b"def " not in body and b"root:" not in body


def test_a_view_over_http_is_the_cli_output(served, small_png, tmp_path):
    status, _, body = request(served, "/api/view?kernel=blur&stride=2,1")
    view = json.loads(body)
    assert status == 200 and view["output_shape"] == [5, 12]
    assert view["shape_text"].splitlines()[3] == "output rows:  floor((11 - 1*(3 - 1) - 1) / 2) + 1 = 5"
    status, content_type, png = request(served, f"/api/output/{view['key']}.png")
    assert status == 200 and content_type == "image/png"
    out = tmp_path / "cli.png"
    assert invoke("blur", small_png, out, "--stride", 2, 1).exit_code == 0
    assert png == out.read_bytes()
    status, _, body = request(served, f"/api/pixel?key={view['key']}&row=4&col=11")
    numbers = json.loads(body)
    assert numbers["value"] == pytest.approx(read(small_png)[8:11, 11:14].mean(), rel=1e-6)


def test_a_bad_view_is_one_error_line_and_the_server_goes_on(served, small_png):
    status, _, body = request(served, "/api/view?kernel=blur&dilation=9")
    assert status == 400
    assert json.loads(body) == {
        "error": f"Error: {small_png}: image is 11x14 but the 3x3 kernel with dilation 9x9 needs at least "
        "19x19 pixels under 'valid' padding"
    }
    assert request(served, "/api/view?kernel=edge")[0] == 200


def test_uploads_are_decoded_capped_and_guarded(served, tmp_path):
    picture = tmp_path / "up.png"
    pixels = save(picture, (6, 7), seed=9)
    status, _, body = request(served, "/api/upload", method="POST", body=picture.read_bytes())
    assert status == 200
    key = json.loads(body)["image"]
    view = json.loads(request(served, f"/api/view?image={key}&kernel=identity&size=1")[2])
    png = request(served, f"/api/output/{view['key']}.png")[2]
    assert np.array_equal(read(io.BytesIO(png)), pixels)
    # A broken upload: one line on the page, and the server goes on.
    status, _, body = request(served, "/api/upload", method="POST", body=b"\x89PNG\r\n\x1a\nnot really")
    assert status == 400 and json.loads(body)["error"].startswith("Error: uploaded.png: ")
    status, _, body = request(served, "/api/upload", method="POST", body=b"x" * 5000)
    assert status == 413
    assert json.loads(body)["error"] == "Error: uploaded.png: is 5,000 bytes; the limit is 4,096"
    big = tmp_path / "big.png"
    save(big, (21, 20), seed=1)  # 420 pixels > --max-pixels 400
    status, _, body = request(served, "/api/upload", method="POST", body=big.read_bytes())
    assert status == 400 and "420" in json.loads(body)["error"]
    assert request(served, "/api/view?kernel=blur")[0] == 200


def test_an_unknown_image_key_is_refused(served):
    status, _, body = request(served, "/api/view?image=../../etc/passwd")
    assert status == 400
    assert json.loads(body)["error"].startswith("Error: image: no image '../../etc/passwd' here")


def test_a_stopped_server_frees_its_port(small_png):
    server = ExploreServer(Explorer(str(small_png)), 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.port
    assert request(server, "/api/meta")[0] == 200
    server.shutdown()
    server.server_close()
    thread.join(timeout=30)
    with pytest.raises(OSError):  # nothing listens there any more
        socket.create_connection(("127.0.0.1", port), timeout=5)


# --- the command ---------------------------------------------------------------------------------


def test_a_bad_image_is_one_error_line_before_anything_listens(tmp_path):
    missing = invoke("explore", tmp_path / "nope.png", "--no-browser")
    assert (missing.exit_code, missing.output) == (1, f"Error: {tmp_path / 'nope.png'}: no such file\n")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    result = invoke("explore", broken, "--no-browser")
    assert (result.exit_code, result.output) == (1, f"Error: {broken}: not an image file Pillow can read\n")


def test_a_port_in_use_is_one_error_line(small_png):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke("explore", small_png, "--port", port, "--no-browser")
    assert result.exit_code == 1
    assert result.output == f"Error: 127.0.0.1:{port}: cannot listen there (Address already in use)\n"
