"""The `digest` command: a thin skin over the pipeline.

Flags in, a report out. Expected errors (`DigestError`) become one line on stderr with
the exit code they carry (2 for configuration and input, 1 for the rest), here and only
here; `-v` logs progress and shows tracebacks.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from digest.cli.commands import fetch, plan, preview, send_now, status, worker
from digest.cli.operate import check, run, why
from digest.cli.rank import rank
from digest.cli.serve import serve
from digest.cli.subscribers import add_subscriber_commands
from digest.errors import DigestError
from digest.logs import configure as configure_logging


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log progress and show tracebacks.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log lines as key=value text or as JSON objects.",
)
@click.version_option(package_name="paper-digest")
def cli(verbose: bool, log_format: str) -> None:
    """paper-digest: a daily email of the new papers that matter to each subscriber."""
    # Without -v only real warnings (e.g. a ranker falling back) reach stderr; what went
    # wrong with a page or a send is printed once, from the run's report.
    configure_logging(verbose, log_format)


for command in (send_now, plan, worker, run, fetch, preview, status, check, why, rank):
    cli.add_command(command)
cli.add_command(serve)
add_subscriber_commands(cli)


def main(argv: list[str] | None = None) -> Any:
    """Entry point: run the CLI, turning expected errors into one line and an exit code."""
    args = sys.argv[1:] if argv is None else argv
    verbose = "-v" in args or "--verbose" in args
    try:
        code = cli.main(args=args, prog_name="digest", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except DigestError as exc:
        if verbose:
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    if isinstance(code, int) and code:
        sys.exit(code)
    return code
