"""The typer application: registers one command per module of :mod:`btyd_ltv.cli`."""

from __future__ import annotations

import typer

from btyd_ltv.cli._common import handle_errors
from btyd_ltv.cli.compare import compare_command
from btyd_ltv.cli.curves import curves_app
from btyd_ltv.cli.datasets import datasets_command
from btyd_ltv.cli.fit import fit_command, predict_command, summary_command
from btyd_ltv.cli.score import score_command

app = typer.Typer(
    name="btyd-ltv",
    help="Bayesian customer-lifetime-value models (BG/NBD, Gamma-Gamma, CLV, ZILN, cohort LTV curves) on "
    "JAX/NumPyro, LTV metrics, and side-by-side comparison with deep-model baselines.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("fit")(handle_errors(fit_command))
app.command("predict")(handle_errors(predict_command))
app.command("summary")(handle_errors(summary_command))
app.command("datasets")(handle_errors(datasets_command))
app.command("score")(handle_errors(score_command))
app.command("compare")(handle_errors(compare_command))
app.add_typer(curves_app, name="curves")


def main() -> None:
    """Console-script entry point."""
    app()
