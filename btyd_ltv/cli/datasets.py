"""``btyd-ltv datasets``: the built-in data sets."""

from __future__ import annotations

from btyd_ltv.cli._common import echo_table


def datasets_command() -> None:
    """List the built-in data sets with their size, period and source."""
    from btyd_ltv.data.datasets import list_datasets

    table = list_datasets().set_index("name")
    echo_table(table)
