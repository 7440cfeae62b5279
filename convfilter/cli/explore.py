"""``convfilter explore [IMAGE]``: a local page where a learner moves the controls and the layer answers.

The web server lives in :mod:`convfilter.explore`; this module only reads the
options, prints the URL and serves until Ctrl-C (exit 130, the port freed).
"""

from __future__ import annotations

import click

from convfilter.cli.boundary import Command
from convfilter.cli.options import max_pixels_option

EXPLORE_HELP = """Open a local page to explore a Conv2D layer on IMAGE (default: a sample).

\b
The page runs the real Keras layer in this process: pick a kernel or edit
its weights, move the stride, padding, dilation, border, bias and range,
switch to a transposed convolution or a pooling layer, and see the output,
its shape with the formula, the numbers behind any output pixel (hover it),
the Keras code and the equivalent convfilter command line. The view lives
in the URL: a link reproduces it.

\b
The server listens on 127.0.0.1 only. It prints the page's URL with a
random token; a request without the token is refused. Ctrl-C stops it.

\b
Examples:
  convfilter explore sample_images/ascent.png
  convfilter explore photo.png --port 8765 --no-browser
"""


@click.command(
    "explore", cls=Command, help=EXPLORE_HELP, short_help="a local page: move the controls, watch the layer"
)
@click.argument("image", required=False, metavar="[IMAGE]")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="The port on 127.0.0.1 to listen on; 0 picks a free one.",
)
@click.option("--no-browser", is_flag=True, help="Only print the URL; do not open a browser.")
@click.option(
    "--max-upload",
    type=click.IntRange(1),
    default=32 * 1024 * 1024,
    show_default=True,
    metavar="BYTES",
    help="Refuse uploaded images larger than this.",
)
@max_pixels_option(
    "Refuse IMAGE, uploads and outputs with more pixels than this (a decompression-bomb guard)."
)
@click.option("-v", "--verbose", is_flag=True, help="Log each request (without its token) to stderr.")
def explore_command(image, port, no_browser, max_upload, max_pixels, verbose):
    import sys

    from convfilter.cli.files import handle_termination
    from convfilter.engine.model import preload
    from convfilter.explore.session import Explorer
    from convfilter.explore.web import ExploreServer, serve

    explorer = Explorer(image, max_pixels=max_pixels, max_upload=max_upload)
    try:
        server = ExploreServer(
            explorer, port, log=(lambda line: click.echo(line, err=True)) if verbose else None
        )
    except OSError as exc:
        raise click.ClickException(f"127.0.0.1:{port}: cannot listen there ({exc.strerror or exc})") from None
    handle_termination()
    preload()  # the first view should not wait for TensorFlow's import
    click.echo(f"convfilter explore: serving on 127.0.0.1:{server.port}; Ctrl-C stops it. Open:")
    click.echo(server.url)
    sys.stdout.flush()
    if not no_browser:
        import webbrowser

        webbrowser.open(server.url)
    serve(server)
