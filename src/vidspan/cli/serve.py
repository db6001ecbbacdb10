"""``vidspan serve``: the library's HTTP API and timeline page."""

from __future__ import annotations

from typing import Any

import click

from vidspan.cli import options
from vidspan.errors import MissingDependencyError


@click.command("serve", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    type=click.Path(dir_okay=False),
    default=None,
    help="Index file to serve (default: the index in the vidspan user directory).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=int, default=8000, show_default=True, help="Port to listen on.")
@click.option(
    "--token",
    envvar="VIDSPAN_SERVE_TOKEN",
    default=None,
    help="Require 'Authorization: Bearer TOKEN' on /api and /media (open the page as /#token=TOKEN).",
)
@click.option(
    "-m", "--model", default=None, help="Model for /api/caption and /api/find (without one they answer 503)."
)
@options.apply(options.BACKEND)
def serve_command(db: str | None, host: str, port: int, token: str | None, model: str | None,
                  **backend: Any) -> None:  # fmt: skip
    """Serve the video index: JSON API, media with seeking, and a timeline page at /.

    Example:

        vidspan serve --db videos.db --port 8000
    """
    try:
        import uvicorn

        from vidspan.server.app import create_app
    except ImportError as exc:
        raise MissingDependencyError(
            f"'vidspan serve' needs FastAPI and uvicorn ({exc.name} is missing). "
            "Install with: pip install 'vidspan[server]'"
        ) from None
    try:
        from vidspan.library.open import open_index
    except ImportError:
        raise click.ClickException(
            "The video index (vidspan.library.sqlite) is not available in this build."
        ) from None
    library = open_index(db, create=False)  # None: the default index; a missing file is an error
    loaded = None
    if model is not None:
        from vidspan.windows import load_model

        click.echo(f"Loading {model}...", err=True)
        loaded = load_model(model, **{k: v for k, v in backend.items() if v is not None})
    app = create_app(library, token=token, model=loaded)
    click.echo(f"Serving {db or 'the default index'} at http://{host}:{port}/ (Ctrl+C to stop)", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
