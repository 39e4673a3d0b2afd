"""What the CLI shows: tables, progress bars on a terminal, one-line warnings."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

_STAGE_LABELS = {"fetch": "Reading pages", "index": "Embedding papers"}


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    for line in [header, [("-" * w) for w in widths], *rows]:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=False)).rstrip())


def warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


class TerminalProgress:
    """A progress bar per pipeline stage on stderr, only when stderr is a terminal."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self._stage: str | None = None
        self._bar: Any = None

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        if stage != self._stage:
            self.close()
            self._stage = stage
            label = _STAGE_LABELS.get(stage, stage)
            self._bar = click.progressbar(length=max(total or 1, 1), label=label, file=sys.stderr)
            self._bar.__enter__()
        bar = self._bar
        bar.length = max(total or done + 1, done, 1)
        bar.update(done - bar.pos)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None
            self._stage = None

    def __enter__(self) -> TerminalProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
