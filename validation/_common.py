"""Helpers shared by the validation scripts (run as ``python validation/NAME.py``)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def md_table(df: pd.DataFrame, fmt: str = "{:.4g}") -> str:
    """A DataFrame as a GitHub markdown table (floats through ``fmt``; index as first column)."""
    cols = [df.index.name or ""] + [str(c) for c in df.columns]

    def cell(v) -> str:
        if isinstance(v, (float, np.floating)):
            return "" if np.isnan(v) else fmt.format(v)
        return str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for idx, row in df.iterrows():
        lines.append("| " + " | ".join([str(idx)] + [cell(v) for v in row]) + " |")
    return "\n".join(lines)


def pct(est: float, ref: float) -> float:
    """Percentage difference of ``est`` from ``ref``."""
    return 100.0 * (est - ref) / ref
