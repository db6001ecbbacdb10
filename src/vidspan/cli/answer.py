"""``vidspan ask`` and ``vidspan summarize``: answers with cited moments, summaries with chapters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from vidspan.cli import options
from vidspan.cli.ask import ProgressPrinter, format_seconds

CONTEXT = {"help_option_names": ["-h", "--help"]}
VIDEO_MODEL = options.apply(options.MODEL, options.BACKEND, options.SAMPLING, options.MAX_NEW_TOKENS)


def _model_options(params: dict[str, Any]) -> dict[str, Any]:
    """The sampling and model options given on the command line (``None`` means not given)."""
    return {k: v for k, v in params.items() if v is not None}


@click.command("ask", context_settings=CONTEXT)
@click.argument("args", nargs=-1, required=True, metavar="[VIDEO] QUESTION")
@click.option("--db", default=None, help="Ask the library (SQLite file or postgresql:// URL): its search "
              "hits are the evidence; with VIDEO, only that video's.")  # fmt: skip
@click.option("--top-k", type=click.IntRange(min=1), default=8, show_default=True,
              help="Moments retrieved for the language model.")
@click.option("--no-ground", is_flag=True, help="Do not ground the question with find (faster, coarser).")
@options.apply(options.LLM)
@VIDEO_MODEL
@options.apply(options.JSON, options.NO_PROGRESS)
def ask_command(args: tuple[str, ...], db: str | None, top_k: int, no_ground: bool, model: str, as_json: bool,
                no_progress: bool, **params: Any) -> None:  # fmt: skip
    """Answer QUESTION about VIDEO (captioned now) or the library --db, citing moments as [start–end].

    Every citation is checked: it must lie inside the video and overlap a moment that was retrieved.
    An answer with no citation that holds says it is not supported (exit code 0; see --json's
    "supported"). Example:

        vidspan ask lobby.mp4 "when does the courier arrive?" --llm openai:gpt-4.1

        vidspan ask --db library.sqlite "who opens the door?" --llm openai:qwen3 --llm-base-url http://127.0.0.1:8000/v1
    """
    from vidspan.answer import ask

    if len(args) > 2:
        raise click.UsageError("Give at most one VIDEO and one QUESTION (quote the question).")
    video, question = (args[0], args[1]) if len(args) == 2 else (None, args[0])
    if video is None and db is None:
        raise click.UsageError("Give a VIDEO or --db LIBRARY to ask about.")
    if video is not None and db is None and not Path(video).exists():
        raise click.ClickException(f"Cannot read video {video}: no such file.")
    llm = options.llm_judge(params)
    progress = ProgressPrinter(not no_progress)
    answer = ask(question, llm=llm, video=video, db=db, model=model, top_k=top_k, ground=not no_ground,
                 progress=progress, **_model_options(params))  # fmt: skip
    if as_json:
        click.echo(json.dumps(answer.to_dict(), indent=2, ensure_ascii=False))
        return
    if not answer.supported:
        click.echo(f"Not supported: {answer.text}")
        if answer.raw:
            click.echo(f"(the language model said: {' '.join(answer.raw.split())})")
    else:
        click.echo(answer.text)
    ok = [c for c in answer.citations if c.ok]
    several = len({e.video for e in answer.evidence}) > 1
    if ok:
        click.echo("\nCited moments:")
        for c in ok:
            moment = answer.evidence[c.evidence] if c.evidence is not None else None
            where = f"{Path(c.video).name} " if c.video and several else ""
            click.echo(f"  {where}{format_seconds(c.span.start)} - {format_seconds(c.span.end)}  "
                       f"{moment.text if moment else ''}")  # fmt: skip
    for c in answer.rejected:
        click.echo(f"  rejected {c.text}: {c.problem}", err=True)


@click.command("summarize", context_settings=CONTEXT)
@click.argument("video", type=click.Path())
@options.apply(options.LLM)
@VIDEO_MODEL
@click.option("--chapters", "chapters_only", is_flag=True,
              help="Print only the chapter list (YouTube style: 0:00 Title).")  # fmt: skip
@options.apply(options.JSON, options.NO_PROGRESS)
def summarize_command(video: str, model: str, chapters_only: bool, as_json: bool, no_progress: bool,
                      **params: Any) -> None:  # fmt: skip
    """Summarise VIDEO window by window, then as a whole, with chapter titles and start times.

    Example:

        vidspan summarize lecture.mp4 --llm openai:gpt-4.1-mini
    """
    from vidspan.answer.summarize import summarize

    if not Path(video).exists():
        raise click.ClickException(f"Cannot read video {video}: no such file.")
    llm = options.llm_judge(params)
    summary = summarize(video, llm=llm, model=model, progress=ProgressPrinter(not no_progress),
                        **_model_options(params))  # fmt: skip
    if as_json:
        click.echo(json.dumps(summary.to_dict(), indent=2, ensure_ascii=False))
        return
    from vidspan.export import chapter_clock

    lines = [f"{chapter_clock(c.start)} {c.title}" for c in summary.chapters]
    if chapters_only:
        click.echo("\n".join(lines))
        return
    click.echo(summary.text + "\n\nChapters:\n" + "\n".join(f"  {line}" for line in lines))


def register(cli: click.Group) -> None:
    """Add ``ask`` and ``summarize`` to the CLI."""
    cli.add_command(ask_command)
    cli.add_command(summarize_command)
