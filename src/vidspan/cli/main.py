"""The ``vidspan`` command: a thin shell over the library.

Results go to stdout, progress and logs to stderr. Every failure is one readable line and a non-zero exit
code; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import click

from vidspan.errors import error_line

logger = logging.getLogger(__name__)

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


class VidspanGroup(click.Group):
    """A click group that turns every failure into one line (or a traceback with ``--debug``)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)
        except Exception as exc:  # the CLI boundary: one line unless --debug
            if ctx.obj and ctx.obj.get("debug"):
                raise
            raise click.ClickException(error_line(exc)) from None


@click.group(cls=VidspanGroup, context_settings=CONTEXT_SETTINGS)
@click.option("-v", "--verbose", count=True, help="Log to stderr: -v info, -vv debug.")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(package_name="vidspan", prog_name="vidspan")
@click.pass_context
def cli(ctx: click.Context, verbose: int, debug: bool) -> None:
    """Ask a video what is happening, and when.

    Example:

        vidspan caption clip.mp4

        vidspan find clip.mp4 "a person opens the door"
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    if not (verbose or debug):
        # the CLI owns the process: keep third-party chatter (weight-loading bars, kernel fallback notes)
        # off stderr unless asked for; the library itself never touches these settings
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    level = logging.WARNING - 10 * min(verbose, 2)
    if verbose or debug:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
        root = logging.getLogger("vidspan")
        root.addHandler(handler)
        root.setLevel(logging.DEBUG if debug else level)


def _register_commands() -> None:
    from vidspan.cli import (
        agents,
        answer,
        ask,
        clip,
        eval,
        eval_captions,
        eval_points,
        export,
        library,
        models,
        points,
        serve,
        train,
        video,
    )

    cli.add_command(ask.caption_command)
    cli.add_command(ask.find_command)
    cli.add_command(points.point_command)
    cli.add_command(points.count_command)
    cli.add_command(points.track_command)
    cli.add_command(models.models_command)
    cli.add_command(video.probe_command)
    cli.add_command(clip.clip_command)
    eval_captions.register(eval.eval_group)
    eval_points.register(eval.eval_group)
    cli.add_command(eval.eval_group)
    cli.add_command(serve.serve_command)
    cli.add_command(train.train_group)
    cli.add_command(train.annotate_command)
    library.register(cli)
    answer.register(cli)
    export.register(cli)
    agents.register(cli)


_register_commands()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=argv, prog_name="vidspan")


if __name__ == "__main__":  # pragma: no cover
    main()
