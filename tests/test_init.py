"""The public API: every exported name resolves to what the README says."""

from __future__ import annotations

import inspect

import btyd_ltv as bl


def test_every_export_resolves():
    for name in bl.__all__:
        assert getattr(bl, name) is not None, name


def test_modules_and_functions():
    assert inspect.ismodule(bl.compare) and inspect.isfunction(bl.compare.compare)
    assert inspect.isfunction(bl.curve_baselines)  # not its module of the same name
    assert inspect.ismodule(bl.metrics) and inspect.ismodule(bl.adapters)
