"""Shared fixtures of the CLI tests."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="module", autouse=True)
def _keep_xla_flags():
    """`fit` sets XLA_FLAGS for one host device per chain (meant for a fresh process). Start JAX before any
    command runs, so the flag is inert in this process, and restore the variable afterwards, so that the tests
    after these see the environment they started with. Module-scoped and autouse: it runs before the
    module-scoped fit fixtures."""
    import jax

    jax.devices()
    saved = os.environ.get("XLA_FLAGS")
    yield
    if saved is None:
        os.environ.pop("XLA_FLAGS", None)
    else:
        os.environ["XLA_FLAGS"] = saved
