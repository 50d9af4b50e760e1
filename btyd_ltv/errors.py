"""Exceptions raised on bad input or failed sampling.

Every message names the column, the first offending row and what to do about it, so the CLI can print it as
one paragraph and exit 2 without a traceback.
"""

from __future__ import annotations


class BtydError(Exception):
    """Base class of every error this package raises on purpose."""


class DataValidationError(BtydError, ValueError):
    """Input data violates a model's assumptions (missing column, NaN, ``recency > T``, ...)."""


class FitError(BtydError, RuntimeError):
    """A fit could not be carried out (e.g. MAP found no finite mode, the Laplace Hessian is singular)."""


class SamplingWarning(UserWarning):
    """Raised as a warning when MCMC diagnostics fail: divergences, R-hat > 1.01 or ESS < 400."""
