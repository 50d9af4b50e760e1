"""Shared fixtures: the CDNOW calibration summary, one NUTS fit per model reused across tests, and a synthetic
customer table with a strong signal for the baselines and the comparison."""

from __future__ import annotations

import os
import sys
import tempfile
import warnings

import pytest

os.environ.setdefault("BTYD_LTV_NO_CACHE", "1")  # the CLI under test does not switch the cache directory
# JAX's persistent compilation cache for the whole run, shared by both xdist workers and the notebook kernels
# (they inherit the environment): a fit of a program compiled before in the run -- every reproducibility check
# fits twice -- loads the executable instead of compiling it again. The loaded executable is the compiled one,
# so results do not change. .ci/run points BTYD_LTV_CACHE_DIR at a directory of its clean checkout.
_JAX_CACHE = os.environ.get("BTYD_LTV_CACHE_DIR") or os.path.join(tempfile.gettempdir(), "btyd_ltv-tests-jax-cache")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", _JAX_CACHE)
if "jax" in sys.modules:  # imported before this file by a plugin: the environment variable came too late
    sys.modules["jax"].config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
warnings.filterwarnings("ignore", category=FutureWarning, module="arviz")


@pytest.fixture(scope="session")
def cdnow_summary():
    from btyd_ltv.data.datasets import load_cdnow_summary

    return load_cdnow_summary().set_index("customer_id")


@pytest.fixture(scope="session")
def cdnow_bgnbd_nuts(cdnow_summary):
    """The default-prior BG/NBD posterior on the CDNOW 39-week calibration summary (4 x 1000 draws)."""
    from btyd_ltv.data.compress import compress_rfm
    from btyd_ltv.inference import fit
    from btyd_ltv.models import bgnbd

    data = bgnbd.make_data_from_compressed(compress_rfm(cdnow_summary))
    return fit(bgnbd, data, seed=1, num_chains=4, num_warmup=1000, num_samples=1000, progress_bar=False)


@pytest.fixture(scope="session")
def cdnow_gamma_gamma_nuts(cdnow_summary):
    from btyd_ltv.inference import fit
    from btyd_ltv.models import gamma_gamma as gg

    data = gg.make_data(cdnow_summary["frequency"], cdnow_summary["monetary_value"])
    return fit(gg, data, seed=1, num_chains=4, num_warmup=1000, num_samples=1000, progress_bar=False)


def _strong_signal_table(n: int = 3000, seed: int = 7):
    """ZILN spend whose P(y > 0) and log-scale mean depend strongly on ``x0``, ``x1`` and a 4-level
    categorical ``segment``; ``y_13w`` is a noisy shorter-horizon part of ``y``."""
    import numpy as np
    import pandas as pd

    from btyd_ltv.data.simulate import simulate_ziln

    table, _ = simulate_ziln(n, intercept_p=-0.3, coef_p=(1.5, -1.0, 0.0), intercept_loc=3.0,
                             coef_loc=(0.8, 0.0, 0.5), intercept_scale=0.0, n_groups=4, group_sd_p=1.0,
                             group_sd_loc=0.5, seed=seed)
    rng = np.random.default_rng(seed + 1)
    table = table.rename(columns={"group": "segment"})
    table["spend_so_far"] = np.exp(table["x2"] + rng.normal(0, 0.3, n))
    table["y_13w"] = table["y"] * rng.uniform(0.2, 0.5, n)
    table.index = pd.Index([f"c{i:05d}" for i in range(n)], name="customer_id")
    return table


@pytest.fixture(scope="session")
def strong_signal_table():
    """``f(n=3000, seed=7)``: a synthetic customer table with a strong signal (see :func:`_strong_signal_table`)."""
    return _strong_signal_table


@pytest.fixture(scope="session")
def fit_recovery_curves():
    """Fit the cohort-curve model the way the recovery tests on numpy-simulated cohorts do: active users in a
    column, normal actives, a cohort level on the retention level only (the simulated revenue has no cohort
    differences, and a cohort sd near 0 is a funnel), 2 chains with as many warmup iterations as draws, sampling
    warnings silenced (the tests check the diagnostics). ``model`` is passed to ``CurveOptions``."""
    from btyd_ltv.cohort_workflow import CurveOptions, fit_curves
    from btyd_ltv.data.cohorts import CohortColumns
    from btyd_ltv.workflow import FitOptions

    def fit(table, *, draws: int, seed: int, horizon: int, summarise: bool = False, **model):
        settings = CurveOptions(likelihood="normal", cohort_effects=("log_ret",), horizon=horizon, max_draws=200,
                                options=FitOptions(num_chains=2, num_warmup=draws, num_samples=draws, seed=seed,
                                                   progress_bar=False, target_accept_prob=0.9), **model)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fit_curves(table, CohortColumns(active_users="active_users"), settings=settings,
                              summarise=summarise)

    return fit
