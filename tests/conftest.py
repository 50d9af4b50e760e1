"""Shared fixtures: the CDNOW calibration summary and one NUTS fit per model reused across tests."""

from __future__ import annotations

import os
import warnings

import pytest

os.environ.setdefault("BTYD_LTV_NO_CACHE", "1")
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
