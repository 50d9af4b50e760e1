"""Shared CLI plumbing: error handling (one paragraph, exit 2, no traceback) and warning display."""

from __future__ import annotations

import functools
import warnings
from typing import Callable

import typer

from btyd_ltv.errors import BtydError

EXIT_BAD_INPUT = 2


def fail(message: str) -> None:
    """Print ``error: message`` to stderr and exit 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_BAD_INPUT)


def handle_errors(func: Callable) -> Callable:
    """Turn the package's own exceptions into a one-paragraph error and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        warnings.filterwarnings("ignore", category=FutureWarning)  # arviz's refactor notice
        try:
            return func(*args, **kwargs)
        except BtydError as err:
            fail(str(err))
        except KeyboardInterrupt:
            typer.echo("interrupted; no partial output was written", err=True)
            raise typer.Exit(130)

    return wrapper


def split_list(value: str | None) -> list[str]:
    """A comma-separated option as a list of stripped, non-empty names."""
    return [c.strip() for c in value.split(",") if c.strip()] if value else []


def echo_table(df, *, floatfmt: str = "{:.4g}") -> None:
    """Print a DataFrame as an aligned text table."""
    typer.echo(df.to_string(float_format=lambda v: floatfmt.format(v)))


def echo_depth_note(count: int, prefix: str = "") -> None:
    """Print (to stderr) how many draws reached NUTS's tree-depth cap, when any did."""
    if count:
        typer.echo(f"note: {prefix}{count} draws reached the tree-depth cap (--max-tree-depth): valid transitions "
                   "that explore less; the cost shows in ess_bulk (params.csv)", err=True)
