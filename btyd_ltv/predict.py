"""Per-customer predictions with credible intervals from a fitted posterior.

Every quantity is evaluated per posterior draw, so each customer gets a mean and quantiles. Nothing of shape
``draws x customers`` is materialised: work proceeds in chunks of unique ``(x, t_x, T)`` rows (and, for CLV,
of customers sorted by row), and the expensive hypergeometric term of the BG/NBD conditional expectation is
computed once per distinct ``(x, T)`` in a chunk, since it does not depend on ``t_x``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from btyd_ltv.data.compress import CompressedRFM
from btyd_ltv.data.predictions import quantile_column
from btyd_ltv.models import bgnbd
from btyd_ltv.models import gamma_gamma as gg

__all__ = [
    "PERIODS_PER_MONTH",
    "periods_per_month",
    "posterior_draws",
    "summarize_draws",
    "clv_discount_factor",
    "predict_customers",
    "predict_spend",
    "PredictionSettings",
]

QUANTILES: tuple[float, ...] = (0.05, 0.5, 0.95)

#: Periods per month for CLV, as in lifetimes' ``customer_lifetime_value`` (``freq`` -> factor).
PERIODS_PER_MONTH: dict[str, float] = {"D": 30.0, "W": 4.345, "M": 1.0, "H": 30.0 * 24.0}


def periods_per_month(freq: str, freq_multiplier: float = 1.0) -> float:
    """Model time units per month: lifetimes' factor for ``freq`` divided by ``freq_multiplier``
    (``"D"`` with multiplier 7, i.e. weeks at daily resolution, gives 30/7)."""
    key = freq.upper()[:1]
    if key not in PERIODS_PER_MONTH:
        raise ValueError(f"freq {freq!r}: CLV needs a time unit of D, W, M or H")
    return PERIODS_PER_MONTH[key] / float(freq_multiplier)


def posterior_draws(idata, names, max_draws: int | None = None) -> dict[str, np.ndarray]:
    """Flatten ``chain x draw`` of the named posterior variables to 1-D arrays, evenly thinned to at most
    ``max_draws`` draws."""
    post = idata.posterior
    out = {}
    for name in names:
        v = np.asarray(post[name].values, dtype=np.float64).reshape(-1)
        if max_draws is not None and v.size > max_draws:
            v = v[np.linspace(0, v.size - 1, max_draws).round().astype(int)]
        out[name] = v
    return out


def summarize_draws(values: np.ndarray, prefix: str, quantiles=QUANTILES, *,
                    overwrite: bool = False) -> dict[str, np.ndarray]:
    """Mean and quantiles over the draw axis (the last axis) -> ``{prefix_mean, prefix_q05, ...}``.

    Quantiles use numpy's default (linear interpolation, Hyndman & Fan type 7) from one sort along the
    contiguous last axis; ``overwrite=True`` sorts ``values`` in place.
    """
    out = {f"{prefix}_mean": values.mean(axis=-1)}
    if overwrite:
        values.sort(axis=-1)
        ordered = values
    else:
        ordered = np.sort(values, axis=-1)
    S = ordered.shape[-1]
    for q in quantiles:
        h = (S - 1) * q
        lo = int(np.floor(h))
        hi = min(lo + 1, S - 1)
        frac = h - lo
        out[f"{prefix}_q{round(q * 100):02d}"] = ordered[..., lo] * (1.0 - frac) + ordered[..., hi] * frac
    return out


def clv_discount_factor(x, T, r, alpha, a, b, *, months: int, periods_per_month: float,
                        discount_rate: float) -> np.ndarray:
    """Discounted expected purchases over ``months`` of a customer alive at ``T``:

    .. math:: D = \\sum_{m=1}^{M} \\frac{G(m f) - G((m-1) f)}{(1+d)^m}

    with ``G(t)`` the expected purchases in ``(T, T+t]`` given alive (FHL 2005 eq. 10 numerator), ``f``
    periods per month and ``d`` the monthly discount rate. ``CLV = spend * P(alive) * D``, the definition of
    lifetimes' ``customer_lifetime_value``.
    """
    total = 0.0
    prev = 0.0
    for m in range(1, months + 1):
        cur = bgnbd._future_factor(m * periods_per_month, x, T, r, alpha, a, b)
        total = total + (cur - prev) / (1.0 + discount_rate) ** m
        prev = cur
    return total


@dataclass(frozen=True)
class PredictionSettings:
    """What :func:`predict_customers` computes.

    horizon : periods (model time units) for the conditional expected purchases.
    clv_months, discount_rate, periods_per_month : CLV definition (lifetimes': monthly discount rate).
    max_draws : evenly thin the posterior to this many draws (``None``: all).
    chunk_elements : draws x rows evaluated at once (memory bound: 4M float64 = 32 MB per array).
    seed : for the posterior predictive holdout counts (their random draws are laid out by chunk, so the
        same seed and ``chunk_elements`` reproduce them exactly; another ``chunk_elements`` gives other draws).
    """

    horizon: float = 52.0
    clv_months: int = 12
    discount_rate: float = 0.01
    periods_per_month: float = 30.0 / 7.0
    max_draws: int | None = None
    chunk_elements: int = 4_000_000
    seed: int = 0


#: Largest draws x (x, T)-pairs table kept in memory for the hypergeometric terms (float64: 320 MB each).
PAIR_TABLE_MAX_ELEMENTS = 40_000_000


def _pair_terms(th, px, pT, settings: PredictionSettings, with_clv: bool):
    """Hypergeometric terms, which depend on (x, T) only: G(horizon) and the CLV discount factor; (pairs, S)."""
    r, alpha, a, b = (th[k][None, :] for k in bgnbd.PARAM_NAMES)
    px, pT = px[:, None], pT[:, None]
    G = bgnbd._future_factor(settings.horizon, px, pT, r, alpha, a, b)
    D = None
    if with_clv:
        D = clv_discount_factor(
            px, pT, r, alpha, a, b, months=settings.clv_months,
            periods_per_month=settings.periods_per_month, discount_rate=settings.discount_rate,
        )
    return G, D


class _PairTable:
    """G and D for every distinct (x, T) pair of the data, computed once in chunks of pairs; falls back to
    per-chunk evaluation when draws x pairs would exceed :data:`PAIR_TABLE_MAX_ELEMENTS`."""

    def __init__(self, th, x, T, settings: PredictionSettings, with_clv: bool):
        self.th, self.settings, self.with_clv = th, settings, with_clv
        pairs, inv = np.unique(np.column_stack([x, T]), axis=0, return_inverse=True)
        self.row_pair = inv.reshape(-1)
        S = th["r"].size
        self.G = self.D = None
        if S * len(pairs) <= PAIR_TABLE_MAX_ELEMENTS:
            step = max(1, settings.chunk_elements // S)
            parts = [_pair_terms(th, pairs[i:i + step, 0], pairs[i:i + step, 1], settings, with_clv)
                     for i in range(0, len(pairs), step)]
            self.G = np.concatenate([g for g, _ in parts], axis=0)
            self.D = np.concatenate([d for _, d in parts], axis=0) if with_clv else None

    def get(self, rows: np.ndarray, x: np.ndarray, T: np.ndarray):
        if self.G is not None:
            idx = self.row_pair[rows]
            return self.G[idx], (self.D[idx] if self.with_clv else None)
        pairs, inv = np.unique(np.column_stack([x, T]), axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        G, D = _pair_terms(self.th, pairs[:, 0], pairs[:, 1], self.settings, self.with_clv)
        return G[inv], (D[inv] if self.with_clv else None)


def predict_customers(
    bgnbd_idata,
    rfm: CompressedRFM,
    *,
    settings: PredictionSettings = PredictionSettings(),
    gamma_gamma_idata=None,
    holdout: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per-customer P(alive), expected purchases over ``settings.horizon`` and (with a Gamma-Gamma posterior
    and monetary values) CLV, each as mean and 5/50/95% posterior quantiles.

    ``holdout`` (columns ``frequency_holdout`` and ``duration_holdout``, indexed like the customers) adds the
    posterior predictive distribution of the holdout purchase count (mean and 5/50/95% of draws of the count,
    :func:`btyd_ltv.models.bgnbd.sample_conditional_purchases`) beside the actual count.
    """
    draws = posterior_draws(bgnbd_idata, bgnbd.PARAM_NAMES, settings.max_draws)
    S = draws["r"].size
    with_clv = gamma_gamma_idata is not None
    if with_clv:
        if rfm.monetary_value is None:
            raise ValueError("CLV needs monetary values: build the CompressedRFM with monetary_col")
        gdraws = posterior_draws(gamma_gamma_idata, gg.PARAM_NAMES, settings.max_draws)
        n = min(S, gdraws["p"].size)
        draws = {k: v[:n] for k, v in draws.items()}
        gdraws = {k: v[:n] for k, v in gdraws.items()}
        S = n

    n_cust = rfm.n_customers
    cols: dict[str, np.ndarray] = {}
    order = np.argsort(rfm.inverse, kind="stable")
    chunk = max(1, settings.chunk_elements // S)
    rng = np.random.default_rng(settings.seed)
    hold_dur = hold_freq = None
    if holdout is not None:
        hold = holdout.loc[rfm.customer_id]
        hold_dur = hold["duration_holdout"].to_numpy(dtype=np.float64)
        hold_freq = hold["frequency_holdout"].to_numpy(dtype=np.float64)

    pairs = _PairTable(draws, rfm.frequency, rfm.T, settings, with_clv)

    def put(name: str, idx: np.ndarray, values: np.ndarray) -> None:
        if name not in cols:
            cols[name] = np.empty(n_cust, dtype=np.float64)
        cols[name][idx] = values

    for start in range(0, n_cust, chunk):
        cidx = order[start : start + chunk]  # customers of this chunk, grouped by row
        rows, local = np.unique(rfm.inverse[cidx], return_inverse=True)
        local = local.reshape(-1)
        x, t_x, T = rfm.frequency[rows], rfm.recency[rows], rfm.T[rows]
        r, alpha, a, b = (draws[k][None, :] for k in bgnbd.PARAM_NAMES)
        p_alive = bgnbd.probability_alive(x[:, None], t_x[:, None], T[:, None], r, alpha, a, b)
        G, D = pairs.get(rows, x, T)
        expected = p_alive * G
        if with_clv:
            spend = gg.conditional_expected_average_spend(
                x[local][:, None], rfm.monetary_value[cidx][:, None],
                *(gdraws[k][None, :] for k in gg.PARAM_NAMES),
            )
            clv = spend * p_alive[local] * D[local]
            for name, v in summarize_draws(spend, "expected_spend", overwrite=True).items():
                put(name, cidx, v)
            for name, v in summarize_draws(clv, "clv", overwrite=True).items():
                put(name, cidx, v)
        for prefix, vals in (("p_alive", p_alive), ("expected_purchases", expected)):
            for name, v in summarize_draws(vals, prefix, overwrite=True).items():
                put(name, cidx, v[local])
        if holdout is not None:
            counts = bgnbd.sample_conditional_purchases(
                hold_dur[cidx][:, None], x[local][:, None], t_x[local][:, None], T[local][:, None],
                r, alpha, a, b, rng,
            )
            for name, v in summarize_draws(counts.astype(np.float64), "pred_holdout", overwrite=True).items():
                put(name, cidx, v)

    out = pd.DataFrame(
        {
            "frequency": rfm.expand(rfm.frequency),
            "recency": rfm.expand(rfm.recency),
            "T": rfm.expand(rfm.T),
        },
        index=pd.Index(rfm.customer_id, name="customer_id"),
    )
    if holdout is not None:
        out["frequency_holdout"] = hold_freq
        out["duration_holdout"] = hold_dur
    for name, v in cols.items():
        out[name] = v
    out.attrs["horizon"] = settings.horizon
    out.attrs["num_draws"] = S
    return out


def predict_spend(
    clv_idata,
    summary: pd.DataFrame,
    horizon: float,
    *,
    taus=(0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95),
    max_draws: int | None = 1000,
    seed: int = 0,
    return_samples: bool = False,
    chunk_elements: int = 2_000_000,
) -> pd.DataFrame | tuple[pd.DataFrame, np.ndarray]:
    """Posterior predictive of each customer's total (undiscounted) spend over the next ``horizon`` periods
    from a BG/NBD x Gamma-Gamma posterior (``btyd-ltv fit clv``): the quantity a revenue regression predicts,
    so the BTYD models can be scored beside ZILN and the deep baselines.

    Per posterior draw: the mean is ``E[N(t) | x, t_x, T] * E[Z | x, zbar]`` (Fader, Hardie & Lee 2005a eq. 10
    times Fader, Hardie & Lee 2005b eq. 5; purchases and spend are independent in the model);
    ``P(spend > 0) = P(alive) [1 - ((alpha + T) / (alpha + T + t))^(r + x)]``; a predictive draw is
    ``N ~`` :func:`btyd_ltv.models.bgnbd.sample_conditional_purchases`, the customer's spend rate
    ``nu ~ Gamma(q + p x, gamma + x zbar)`` (its Gamma-Gamma posterior) and the total ``~ Gamma(N p, nu)``
    (a sum of ``N`` Gamma(p, nu) transaction values; 0 when ``N = 0``).

    Columns: ``prediction`` (mean over draws), ``p_positive``, quantiles ``qNN`` of the predictive draws, and
    ``expected_q05`` / ``expected_q95`` of the per-draw mean. With ``return_samples`` also the (n, S) array of
    predictive draws (one per posterior draw), for CRPS and coverage.
    """
    for col in ("frequency", "recency", "T", "monetary_value"):
        if col not in summary.columns:
            raise ValueError(f"predict_spend needs column {col!r} in the summary")
    for name in bgnbd.PARAM_NAMES + gg.PARAM_NAMES:
        if name not in clv_idata.posterior:
            raise ValueError(f"predict_spend needs a CLV posterior (BG/NBD and Gamma-Gamma); {name!r} is missing")
    d = posterior_draws(clv_idata, bgnbd.PARAM_NAMES + gg.PARAM_NAMES, max_draws)
    S = d["r"].size
    x_all = summary["frequency"].to_numpy(np.float64)
    tx_all = summary["recency"].to_numpy(np.float64)
    T_all = summary["T"].to_numpy(np.float64)
    m_all = summary["monetary_value"].to_numpy(np.float64)
    n = len(summary)
    taus = np.asarray(taus, dtype=np.float64)
    names = [quantile_column(t) for t in taus]
    cols = {k: np.empty(n) for k in ["prediction", "p_positive", *names, "expected_q05", "expected_q95"]}
    samples = np.empty((n, S)) if return_samples else None
    rng = np.random.default_rng(seed)
    r, alpha, a, b = (d[k][None, :] for k in bgnbd.PARAM_NAMES)
    p, q, gamma = (d[k][None, :] for k in gg.PARAM_NAMES)
    step = max(1, chunk_elements // S)
    for s in range(0, n, step):
        sl = slice(s, min(n, s + step))
        x, t_x, T, m = (v[sl, None] for v in (x_all, tx_all, T_all, m_all))
        p_alive = bgnbd.probability_alive(x, t_x, T, r, alpha, a, b)
        e_n = bgnbd.conditional_expected_purchases(horizon, x, t_x, T, r, alpha, a, b)
        e_z = gg.conditional_expected_average_spend(x, m, p, q, gamma)
        ev = e_n * e_z
        p_pos = p_alive * -np.expm1((r + x) * (np.log(alpha + T) - np.log(alpha + T + horizon)))
        counts = bgnbd.sample_conditional_purchases(horizon, x, t_x, T, r, alpha, a, b, rng).astype(np.float64)
        nu = rng.gamma(q + p * x, 1.0 / (gamma + x * m))
        draw = np.where(counts > 0, rng.gamma(np.maximum(counts * p, 1e-300), 1.0) / nu, 0.0)
        cols["prediction"][sl] = ev.mean(axis=1)
        cols["p_positive"][sl] = p_pos.mean(axis=1)
        qs = np.quantile(draw, taus, axis=1)
        for j, name in enumerate(names):
            cols[name][sl] = qs[j]
        lo, hi = np.quantile(ev, [0.05, 0.95], axis=1)
        cols["expected_q05"][sl], cols["expected_q95"][sl] = lo, hi
        if samples is not None:
            samples[sl] = draw
    out = pd.DataFrame(cols, index=summary.index)
    out.attrs["horizon"] = float(horizon)
    return (out, samples) if return_samples else out
