"""``btyd-ltv score``: one metrics table for any number of models' predictions against the actual values."""

from __future__ import annotations

from pathlib import Path
from typing import List

import typer

from btyd_ltv.cli._common import fail


def _parse_spec(spec: str) -> tuple[str, Path]:
    name, sep, path = spec.partition("=")
    if sep and name and path:
        return name, Path(path)
    return Path(spec).stem, Path(spec)


def score_command(
    truth: Path = typer.Argument(..., help="CSV/Parquet with the id column and the actual values."),
    predictions: List[str] = typer.Argument(..., metavar="[NAME=]PREDICTIONS...",
                                            help="Prediction files: id, prediction[, p_positive, q05, q50, q95...]."),
    target: str = typer.Option(..., "--target", help="Column of TRUTH with the actual values."),
    out: Path = typer.Option(..., "--out", help="Output directory for scores.csv and scores.md."),
    id_col: str = typer.Option("customer_id", "--id-col"),
    prediction_col: str = typer.Option("prediction", "--prediction-col",
                                       help="Point-forecast column in the prediction files."),
    levels: str = typer.Option("0.8,0.95", "--levels", help="Interval coverage levels."),
    top_k: str = typer.Option("0.01,0.1", "--top-k", help="Top fractions for the top-k AUC."),
) -> None:
    """Score models on the same customers (Gini, decile/percentile MAPE, Spearman, AUCs, errors, coverage)."""
    from btyd_ltv.data.predictions import align_predictions
    from btyd_ltv.data.validate import _v
    from btyd_ltv.errors import DataValidationError
    from btyd_ltv.io import read_table, write_csv, write_text
    from btyd_ltv.metrics import report, report_markdown

    def floats(text: str, option: str) -> tuple[float, ...]:
        try:
            vals = tuple(float(v) for v in text.split(",") if v.strip())
        except ValueError:
            fail(f"{option}: expected comma-separated numbers in (0, 1), got {text!r}")
        if not vals or any(not 0 < v < 1 for v in vals):
            fail(f"{option}: expected comma-separated numbers in (0, 1), got {text!r}")
        return vals

    level_v, top_v = floats(levels, "--levels"), floats(top_k, "--top-k")
    table = read_table(truth)
    for col in (id_col, target):
        if col not in table.columns:
            raise DataValidationError(f"{truth}: column {col!r} not found; it has {', '.join(map(str, table.columns))}")
    if table[id_col].astype(str).duplicated().any():
        dup = table[id_col][table[id_col].astype(str).duplicated()].iloc[0]
        raise DataValidationError(f"{truth}: column {id_col!r}: id {_v(dup)} is duplicated")
    ids = table[id_col].astype(str).tolist()
    models = {}
    for spec in predictions:
        name, path = _parse_spec(spec)
        if name in models:
            fail(f"model name {name!r} given twice; name them NAME=PATH")
        models[name] = align_predictions(read_table(path), ids, source=str(path), id_col=id_col,
                                         prediction_col=prediction_col)
    scores = report(table[target].to_numpy(), models, levels=level_v, top_k=top_v)
    typer.echo(report_markdown(scores))
    out = Path(out)
    typer.echo(f"wrote {write_csv(scores, out / 'scores.csv')}")
    typer.echo(f"wrote {write_text(report_markdown(scores), out / 'scores.md')}")
