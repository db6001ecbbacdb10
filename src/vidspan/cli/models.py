"""``vidspan models``: the registered models and families."""

from __future__ import annotations

import json

import click

from vidspan.models.registry import DEFAULT_MODEL, list_backends, list_models


@click.command("models", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def models_command(as_json: bool) -> None:
    """List the models vidspan knows, with aliases, families and checkpoints.

    Any local checkpoint directory of a supported family and any OpenAI-compatible server (--base-url)
    work too.

    Example:

        vidspan models --json
    """
    specs = list_models()
    if as_json:
        rows = [
            {
                "name": s.name,
                "aliases": list(s.aliases),
                "family": s.family.name,
                "checkpoint": s.checkpoint,
                "default": s.name == DEFAULT_MODEL,
                "gated": s.gated,
                "description": s.description,
                "time_encoding": s.family.time_encoding,
                "output_format": s.family.output_format,
            }
            for s in specs
        ]
        click.echo(json.dumps({"models": rows, "backends": sorted(list_backends())}, indent=2))
        return
    width = max(len(s.name) for s in specs) + 2
    fam_width = max(len(s.family.name) for s in specs) + 2
    click.echo(f"{'NAME':<{width}}{'FAMILY':<{fam_width}}CHECKPOINT")
    for s in specs:
        extra = []
        if s.aliases:
            extra.append("aliases: " + ", ".join(s.aliases))
        if s.name == DEFAULT_MODEL:
            extra.append("default")
        if s.gated:
            extra.append("gated")
        suffix = f"  ({'; '.join(extra)})" if extra else ""
        click.echo(f"{s.name:<{width}}{s.family.name:<{fam_width}}{s.checkpoint}{suffix}")
    click.echo(
        f"\nBackends: {', '.join(sorted(list_backends()))}. "
        "Local checkpoint directories and --base-url servers work too."
    )
