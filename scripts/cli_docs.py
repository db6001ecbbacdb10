"""Write docs/cli.md from the commands' --help (run after changing the CLI; a test checks it is current).

    python scripts/cli_docs.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from click.testing import CliRunner

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def render() -> str:
    """The CLI reference page as markdown."""
    from vidspan.cli.main import cli

    runner = CliRunner()
    note = "Generated from `--help` by `python scripts/cli_docs.py`; do not edit."
    parts = ["# CLI reference", "", note, ""]
    for args in ([], *([name] for name in sorted(cli.commands))):
        result = runner.invoke(cli, [*args, "--help"], prog_name="vidspan", terminal_width=110)
        title = " ".join(["vidspan", *args])
        parts += [f"## `{title}`", "", "```text", result.output.rstrip(), "```", ""]
    return "\n".join(parts)


if __name__ == "__main__":
    DOC.write_text(render())
    sys.stdout.write(f"wrote {DOC}\n")
