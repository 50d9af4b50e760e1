"""The ``btyd-ltv`` command line: a thin typer layer over :mod:`btyd_ltv.workflow`."""

from __future__ import annotations

from btyd_ltv.cli.app import app, main

__all__ = ["app", "main"]
