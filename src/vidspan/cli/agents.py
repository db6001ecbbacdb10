"""``vidspan mcp``: vidspan's tools for agents over the Model Context Protocol."""

from __future__ import annotations

from typing import Any

import click

from vidspan.cli import options


@click.command("mcp", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", default=None, help="Library for search, ask and the video resources (SQLite file or "
              "postgresql:// URL).")  # fmt: skip
@click.option("--transport", type=click.Choice(["stdio", "http"]), default="stdio", show_default=True,
              help="stdio (the agent starts this command) or streamable HTTP at http://HOST:PORT/mcp.")
@click.option("--host", default="127.0.0.1", show_default=True, help="With --transport http: interface.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True,
              help="With --transport http: port.")
@click.option("--clips-dir", type=click.Path(file_okay=False), default=None,
              help="Where the clip tool writes (default: a temporary folder).")
@click.option("--points-model", default=None,
              help="Model for the point and count tools [default: molmo2-4b].")
@options.apply(options.MODEL, options.BACKEND, options.SAMPLING, options.LLM)
def mcp_command(db: str | None, transport: str, host: str, port: int, clips_dir: str | None,
                points_model: str | None, model: str, **params: Any) -> None:  # fmt: skip
    """Serve vidspan's tools to agents over MCP: caption, find, search, clip, ask, summarize, point, count.

    Times are seconds from the start of the video. With --db the library's videos and their events are
    resources (vidspan://videos, vidspan://videos/ID). ask and summarize need --llm. Example (an agent's
    MCP configuration runs this command):

        vidspan mcp --db library.sqlite -m marlin-2b --llm openai:gpt-4.1-mini
    """
    import logging

    from vidspan.mcp import MCPConfig, serve

    llm = options.llm_judge(params, required=False)
    if db is not None:
        from vidspan.library.open import open_index

        open_index(db, create=False).close()  # a missing library fails here, in one line
    given = {k: v for k, v in params.items() if v is not None}
    config = MCPConfig(db=db, model=model, points_model=points_model, llm=llm, clips_dir=clips_dir,
                       model_options=given)  # fmt: skip
    quiet = not logging.getLogger("vidspan").isEnabledFor(logging.INFO)
    serve(config, transport="stdio" if transport == "stdio" else "http", host=host, port=port, quiet=quiet)


def register(cli: click.Group) -> None:
    """Add ``mcp`` to the CLI."""
    cli.add_command(mcp_command)
