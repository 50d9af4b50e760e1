"""Seeded simulators of BG/NBD purchasing and Gamma-Gamma spend (RFM summaries and transaction logs).

Generative models:

- BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way", Marketing Science 24(2)): while
  active a customer buys at the times of a Poisson process with rate ``lambda ~ Gamma(r, rate alpha)``; after each
  repeat purchase she drops out with probability ``p ~ Beta(a, b)``.
- Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV", J. Marketing Research 42(4); Colombo & Jiang 1999):
  each spend is ``Gamma(p, rate nu)`` with ``nu ~ Gamma(q, rate gamma)``, so ``E[spend] = p gamma / (q - 1)``.
- Zero-inflated log-normal revenue (Wang, Liu & Miao 2019) from features (:func:`simulate_ziln`), and from
  daily event sequences plus tabular aggregates (:func:`simulate_multimodal`).

Everything is vectorised over customers (no Python loop per customer) and reproducible from ``seed`` via
``np.random.default_rng(seed)``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from btyd_ltv.errors import DataValidationError

__all__ = ["MULTIMODAL_CHANNELS", "MultimodalSample", "cdnow_like_T", "simulate_bgnbd", "simulate_gamma_gamma",
           "simulate_multimodal", "simulate_transactions", "simulate_ziln"]


def _positive(**params: float) -> None:
    for name, value in params.items():
        if not np.isfinite(value) or value <= 0:
            raise DataValidationError(f"parameter {name}={value!r} must be a positive finite number")


def _bgnbd_counts(
    rng: np.random.Generator, n: int, r: float, alpha: float, a: float, b: float, T: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Latent ``lambda``, ``p``, dropout purchase ``J``, arrivals ``N ~ Poisson(lambda T)``, purchases ``min(N, J)``.

    ``J ~ Geometric(p)`` on ``{1, 2, ...}`` is the repeat purchase after which the customer drops out, so she
    makes ``min(N, J)`` of the ``N`` purchases of her Poisson process in ``(0, T]`` and is alive at ``T`` iff
    ``N < J``.
    """
    lam = rng.gamma(r, 1.0 / alpha, size=n)
    p = rng.beta(a, b, size=n)
    J = rng.geometric(p)
    N = rng.poisson(lam * T)
    return lam, p, J, N, np.minimum(N, J)


def _as_T(T: Any, n: int) -> np.ndarray:
    T = np.asarray(T, dtype=np.float64)
    if T.ndim not in (0, 1) or (T.ndim == 1 and T.size != n):
        raise DataValidationError(f"T must be a scalar or an array of length n_customers={n}, got shape {T.shape}")
    T = np.broadcast_to(T, (n,)).copy()
    if not np.all(np.isfinite(T) & (T > 0)):
        pos = int(np.flatnonzero(~(np.isfinite(T) & (T > 0)))[0])
        raise DataValidationError(f"T row {pos}: T={T[pos]!r} must be > 0 and finite")
    return T


def simulate_bgnbd(
    n_customers: int,
    r: float,
    alpha: float,
    a: float,
    b: float,
    T: float | np.ndarray,
    *,
    seed: int | np.random.SeedSequence | None,
    time_grid: float | None = None,
    return_latent: bool = False,
) -> pd.DataFrame:
    """Simulate BG/NBD RFM summaries: ``customer_id`` (1..n), ``frequency``, ``recency``, ``T``.

    ``lambda ~ Gamma(r, rate alpha)``, ``p ~ Beta(a, b)``, ``J ~ Geometric(p)`` on {1, 2, ...},
    ``N ~ Poisson(lambda T)``, ``x = min(N, J)``, and given ``N`` the ``x``-th arrival is the ``x``-th order
    statistic of ``N`` uniforms on ``(0, T]``: ``t_x = T Beta(x, N - x + 1)`` (0 when ``x = 0``).
    ``T`` is a scalar or one value per customer. With ``time_grid`` (e.g. ``1/7``: days in weeks) ``t_x`` is
    rounded up to the grid and capped at ``T``, like day-resolution data. ``return_latent`` adds the columns
    ``lambda``, ``p`` and ``alive`` (``N < J``: not yet dropped out at ``T``).
    """
    n = int(n_customers)
    _positive(r=r, alpha=alpha, a=a, b=b)
    T = _as_T(T, n)
    rng = np.random.default_rng(seed)
    lam, p, J, N, x = _bgnbd_counts(rng, n, r, alpha, a, b, T)
    buys = x > 0
    u = rng.beta(np.where(buys, x, 1), np.where(buys, N - x + 1, 1))
    t_x = np.where(buys, T * u, 0.0)
    if time_grid is not None:
        _positive(time_grid=time_grid)
        t_x = np.where(buys, np.minimum(np.ceil(t_x / time_grid - 1e-9) * time_grid, T), 0.0)
    out = pd.DataFrame(
        {"customer_id": np.arange(1, n + 1), "frequency": x.astype(np.float64), "recency": t_x, "T": T}
    )
    if return_latent:
        out["lambda"] = lam
        out["p"] = p
        out["alive"] = N < J
    return out


def cdnow_like_T(
    n_customers: int, *, seed: int | np.random.SeedSequence | None, low: float = 27.0, high: float = 39.0,
    grid: float = 1.0 / 7.0,
) -> np.ndarray:
    """Customer ages ``T`` uniform on ``[low, high]`` on a grid (default ``1/7``: whole days in weeks).

    In CDNOW (FHL 2005) customers were acquired over the first 12 weeks of 1997 and observed to week 39, so
    ``T`` runs from about 27 to 39 weeks at daily resolution.
    """
    _positive(grid=grid)
    lo, hi = int(np.ceil(low / grid - 1e-9)), int(np.floor(high / grid + 1e-9))
    if hi < lo:
        raise DataValidationError(f"no grid point of {grid!r} between low={low!r} and high={high!r}")
    rng = np.random.default_rng(seed)
    return rng.integers(lo, hi + 1, size=int(n_customers)) * grid


def simulate_gamma_gamma(
    frequency: np.ndarray | pd.Series, p: float, q: float, gamma: float, *, seed: int | np.random.SeedSequence | None
) -> np.ndarray:
    """Mean repeat spend ``zbar`` per customer under Gamma-Gamma (FHL 2005 "RFM and CLV", section 4).

    ``nu ~ Gamma(q, rate gamma)``; each of the ``x`` repeat spends is ``Gamma(p, rate nu)``, so their mean is
    ``Gamma(p x, rate nu x)``. ``zbar = 0`` where ``x = 0``. ``E[zbar | x > 0] = p gamma / (q - 1)`` (``q > 1``).
    """
    _positive(p=p, q=q, gamma=gamma)
    x = np.asarray(frequency, dtype=np.float64)
    if np.any(~np.isfinite(x) | (x < 0) | (x != np.round(x))):
        pos = int(np.flatnonzero(~np.isfinite(x) | (x < 0) | (x != np.round(x)))[0])
        raise DataValidationError(f"frequency row {pos}: {x[pos]!r} must be a non-negative integer")
    rng = np.random.default_rng(seed)
    nu = rng.gamma(q, 1.0 / gamma, size=x.shape)
    buys = x > 0
    xs = np.where(buys, x, 1.0)
    z = rng.gamma(p * xs, 1.0 / (nu * xs))
    return np.where(buys, z, 0.0)


def simulate_transactions(
    n_customers: int,
    *,
    r: float,
    alpha: float,
    a: float,
    b: float,
    p: float,
    q: float,
    gamma: float,
    start: str = "2024-01-01",
    acquisition_days: int = 84,
    observation_days: int = 546,
    time_unit_days: float = 1.0,
    seed: int | np.random.SeedSequence | None,
) -> pd.DataFrame:
    """Simulate a transaction log (``customer_id``, ``date``, ``amount``) from BG/NBD + Gamma-Gamma.

    Customer ``i`` (ids 1..n) makes her first purchase on a day uniform on the first ``acquisition_days`` days
    from ``start``; observation ends after day ``observation_days - 1`` (``df.attrs["observation_end"]``).
    Repeat purchases follow the BG/NBD process over the ``T_i`` days (in units of ``time_unit_days``:
    ``alpha`` and ``1 / lambda`` are in that unit) from her first purchase day to the end: ``x = min(N, J)`` of
    ``N ~ Poisson(lambda T_i)`` arrivals, which given ``N`` are the first ``x`` order statistics of ``N``
    uniforms, drawn as ``T_i S_k / S_{N+1}`` with ``S_k`` the partial sums of exponentials
    (``S_{N+1} = S_x + Gamma(N - x + 1)``), so the work is proportional to the transactions made. Each
    purchase (the first too) is dated on the day it falls in and spends ``Gamma(p, rate nu)``,
    ``nu ~ Gamma(q, rate gamma)``. Rows are sorted by customer, then date.
    """
    n = int(n_customers)
    _positive(r=r, alpha=alpha, a=a, b=b, p=p, q=q, gamma=gamma, time_unit_days=time_unit_days)
    if not 0 < acquisition_days <= observation_days:
        raise DataValidationError(
            f"acquisition_days={acquisition_days!r} must be in 1..observation_days={observation_days!r}"
        )
    rng = np.random.default_rng(seed)
    acq_day = rng.integers(0, int(acquisition_days), size=n)
    T_days = (int(observation_days) - acq_day).astype(np.float64)
    _, _, _, N, x = _bgnbd_counts(rng, n, r, alpha, a, b, T_days / time_unit_days)
    nu = rng.gamma(q, 1.0 / gamma, size=n)

    # Repeat purchase times: partial sums of exponentials within each customer, scaled by the (N+1)-th sum.
    m = int(x.sum())
    owner = np.repeat(np.arange(n), x)
    S = np.cumsum(rng.standard_exponential(m))
    first = np.cumsum(x) - x  # index in S of each customer's first repeat
    base = np.zeros(n)
    has = x > 0
    base[has] = np.where(first[has] > 0, S[np.maximum(first[has] - 1, 0)], 0.0)
    S = S - base[owner]
    S_x = np.zeros(n)
    S_x[has] = S[first[has] + x[has] - 1]
    total = S_x + rng.standard_gamma(np.where(has, N - x + 1, 1).astype(np.float64))
    # Days after the first purchase, in (0, T_days); clipped against rounding in the global cumsum.
    t_rep = np.clip(T_days[owner] * S / total[owner], 0.0, None)

    rows = 1 + x
    n_rows = int(rows.sum())
    row_owner = np.repeat(np.arange(n), rows)
    is_first = np.zeros(n_rows, dtype=bool)
    is_first[np.cumsum(rows) - rows] = True
    day = acq_day[row_owner].astype(np.float64)
    day[~is_first] += np.minimum(np.floor(t_rep), T_days[owner] - 1)
    origin = np.datetime64(pd.Timestamp(start).date(), "D")
    dates = (origin + day.astype(np.int64)).astype("datetime64[us]")
    amount = rng.gamma(p, 1.0 / nu[row_owner])
    out = pd.DataFrame({"customer_id": row_owner + 1, "date": dates, "amount": amount}, copy=False)
    out.attrs["observation_end"] = pd.Timestamp(origin + int(observation_days) - 1)
    return out


def simulate_ziln(
    n: int,
    *,
    intercept_p: float = 0.0,
    coef_p: Any = (1.0, -0.5),
    intercept_loc: float = 3.0,
    coef_loc: Any = (0.5, 0.0),
    intercept_scale: float = 0.5,
    coef_scale: Any | None = None,
    n_groups: int = 0,
    group_sd_p: float = 0.0,
    group_sd_loc: float = 0.0,
    seed: int | np.random.SeedSequence | None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Customer revenue from the ZILN regression of :mod:`btyd_ltv.models.ziln` with known parameters.

    Features ``x0 .. x{k-1}`` are i.i.d. N(0, 1) (k = ``len(coef_p)``); ``logit p = intercept_p + x . coef_p
    (+ group_sd_p z_p[g])``, ``loc = intercept_loc + x . coef_loc (+ group_sd_loc z_loc[g])``, ``scale =
    softplus(intercept_scale + x . coef_scale) + 1e-6`` and ``y = 0`` w.p. ``1 - p``, else LogNormal(loc, scale)
    (Wang, Liu & Miao 2019). Groups are assigned uniformly. Returns the table (``x*``, ``group``, ``y``) and the
    true parameters (including the group effects ``z_p`` / ``z_loc``).
    """
    if n <= 0:
        raise DataValidationError(f"n must be a positive number of customers, got {n}")
    coef_p = np.atleast_1d(np.asarray(coef_p, dtype=np.float64))
    coef_loc = np.atleast_1d(np.asarray(coef_loc, dtype=np.float64))
    k = coef_p.size
    coef_scale = np.zeros(k) if coef_scale is None else np.atleast_1d(np.asarray(coef_scale, dtype=np.float64))
    if coef_loc.size != k or coef_scale.size != k:
        raise DataValidationError("coef_p, coef_loc and coef_scale must have the same length")
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, k))
    logit_p = intercept_p + X @ coef_p
    loc = intercept_loc + X @ coef_loc
    truth: dict[str, Any] = {"intercept_p": intercept_p, "coef_p": coef_p, "intercept_loc": intercept_loc,
                             "coef_loc": coef_loc, "intercept_scale": intercept_scale, "coef_scale": coef_scale}
    g = np.zeros(n, dtype=np.int64)
    if n_groups:
        g = rng.integers(0, n_groups, size=n)
        z_p, z_loc = rng.standard_normal(n_groups), rng.standard_normal(n_groups)
        logit_p = logit_p + group_sd_p * z_p[g]
        loc = loc + group_sd_loc * z_loc[g]
        truth.update(group_sd_p=group_sd_p, group_sd_loc=group_sd_loc, z_p=z_p, z_loc=z_loc)
    scale = np.logaddexp(0.0, intercept_scale + X @ coef_scale) + 1e-6
    positive = rng.random(n) < 1.0 / (1.0 + np.exp(-logit_p))
    y = np.where(positive, np.exp(loc + scale * rng.standard_normal(n)), 0.0)
    table = pd.DataFrame(X, columns=[f"x{j}" for j in range(k)])
    if n_groups:
        table["group"] = [f"g{v:02d}" for v in g]
    table["y"] = y
    return table, truth


# --------------------------------------------------------------------------------------------------------------
# multimodal customers: daily event sequences + tabular aggregates + zero-inflated future revenue
# --------------------------------------------------------------------------------------------------------------

#: Channels of the daily event sequences of :func:`simulate_multimodal`, in array order.
MULTIMODAL_CHANNELS = ("session_length", "views", "launches", "completion_ratio", "streak")
_MM_PLATFORMS = ("android", "ios")
_MM_COUNTRIES = ("US", "DE", "JP", "BR", "IN")
_MM_COUNTRY_LOC = np.array([0.4, 0.2, 0.3, -0.3, -0.6])  # log-amount offsets per country tier


class MultimodalSample(NamedTuple):
    """Output of :func:`simulate_multimodal`.

    ``frame``: one row per customer (index ``customer_id``): the tabular aggregates, the realised ``revenue`` of
    the forecast window and the true ``expected_revenue`` (for reference; not a feature). ``sequences``
    ``(n, L, F)`` float32 daily channels ``sequence_names``, right-aligned so that step ``L - 1`` is the last day
    before the cutoff and zero on padded days; ``sequence_mask`` ``(n, L)`` is True on days the account existed.
    ``numeric`` / ``categorical`` / ``log1p`` name the feature columns of ``frame``.
    """

    frame: pd.DataFrame
    sequences: np.ndarray
    sequence_mask: np.ndarray
    sequence_names: tuple[str, ...]
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    log1p: tuple[str, ...]


def _streaks(active: np.ndarray) -> np.ndarray:
    """Consecutive active days ending at each step, ``(n, L)`` from a boolean ``(n, L)`` array (vectorised:
    step index minus the index of the last inactive step at or before it)."""
    n, L = active.shape
    steps = np.broadcast_to(np.arange(L), (n, L))
    last_off = np.maximum.accumulate(np.where(active, -1, steps), axis=1)
    return np.where(active, steps - last_off, 0)


def simulate_multimodal(
    n: int,
    *,
    seq_len: int = 30,
    n_apps: int = 4,
    new_share: float = 0.2,
    trend_effect: float = 1.0,
    completion_effect: float = 0.6,
    propensity_effect: float = 1.0,
    amount_sigma: float = 1.1,
    seed: int | np.random.SeedSequence | None,
) -> MultimodalSample:
    """Customers of a portfolio of apps with daily event sequences, tabular aggregates and future revenue
    (the multimodal setting of the cross-app LTV reference, seeds/000: sequences for a Transformer, aggregates
    for a tabular model).

    Latent per customer: engagement level ``e``, engagement trend ``tau``, content affinity ``q``, completion
    drift ``kappa`` and payer propensity ``pi``, all i.i.d. N(0, 1). On day ``t = 0..L-1`` with
    ``c_t = t / (L - 1) - 1/2`` the engagement is ``g_t = e + 2 tau c_t + u_t``, ``u_t = 0.6 u_{t-1} + 0.4 N``
    (so it runs from about ``e - tau`` to ``e + tau`` over the window and averages ``e``); the customer is active w.p.
    ``sigmoid(0.3 + 1.2 g_t)``, and on active days ``session_length ~ 8 exp(0.35 g_t + 0.4 N)`` minutes,
    ``launches = 1 + Poisson(exp(0.2 + 0.3 g_t))``, ``views ~ Poisson(launches exp(1 + 0.2 g_t))``,
    ``completion_ratio = sigmoid(0.2 + 0.6 q + 2 kappa c_t + 0.5 N)``; ``streak`` counts consecutive active
    days. A share ``new_share`` of accounts is younger than ``L`` days (leading days masked).

    Revenue over the forecast window is zero-inflated log-normal (Wang, Liu & Miao 2019) with
    ``logit p = -1.2 + app_j + 0.4 ios + propensity_effect pi + 0.6 e + trend_effect tau
    + completion_effect kappa`` and ``log-amount ~ N(2.5 + country_k + 0.5 pi + 0.3 e + trend_effect tau / 2,
    amount_sigma^2)``, so ``expected_revenue = p exp(mu + amount_sigma^2 / 2)``; ``app_j`` is evenly spaced on
    ``[-0.6, 0.6]``, ``ios`` has probability 0.4 and ``country_k`` is +0.4, +0.2, +0.3, -0.3, -0.6 for US, DE,
    JP, BR, IN. Last window's revenue (``past_revenue``) is drawn the same way without the trend and completion
    terms (``logit p = -1.4 + app_j + propensity_effect pi + 0.6 e``). The tabular aggregates (app, platform,
    country, account age, totals and means over the window, ``past_revenue``) summarise the level ``e``, ``q``
    and ``pi`` but not the direction of ``tau`` and ``kappa``: these live only in the temporal pattern of the
    sequences (recent vs. earlier engagement, the streak at the cutoff, the completion-ratio trajectory).
    """
    n, L = int(n), int(seq_len)
    if n <= 0 or L < 2:
        raise DataValidationError(f"need n >= 1 customers and seq_len >= 2 days, got n={n}, seq_len={seq_len}")
    if n_apps < 1 or not 0.0 <= new_share <= 1.0:
        raise DataValidationError(f"need n_apps >= 1 and new_share in [0, 1], got {n_apps}, {new_share}")
    _positive(amount_sigma=amount_sigma)
    rng = np.random.default_rng(seed)
    e, tau, q, kappa, pi = rng.standard_normal((5, n))
    app = rng.integers(0, n_apps, n)
    app_effect = np.linspace(-0.6, 0.6, n_apps) if n_apps > 1 else np.zeros(1)
    ios = rng.random(n) < 0.4
    country = rng.choice(len(_MM_COUNTRIES), size=n, p=[0.3, 0.15, 0.15, 0.2, 0.2])
    new = rng.random(n) < new_share
    age = np.where(new, rng.integers(min(3, L - 1), L, n), rng.integers(L, max(400, L + 1), n))
    mask = np.arange(L)[None, :] >= (L - np.minimum(age, L))[:, None]

    c = np.arange(L) / (L - 1) - 0.5
    ar = np.zeros((n, L))
    shocks = 0.4 * rng.standard_normal((n, L))
    ar[:, 0] = shocks[:, 0] / np.sqrt(1 - 0.6**2)
    for t in range(1, L):  # AR(1) over days (a loop over L steps, vectorised over customers)
        ar[:, t] = 0.6 * ar[:, t - 1] + shocks[:, t]
    g = e[:, None] + 2.0 * tau[:, None] * c[None, :] + ar
    active = (rng.random((n, L)) < 1.0 / (1.0 + np.exp(-(0.3 + 1.2 * g)))) & mask
    session = np.where(active, 8.0 * np.exp(0.35 * g + 0.4 * rng.standard_normal((n, L))), 0.0)
    launches = np.where(active, 1 + rng.poisson(np.exp(0.2 + 0.3 * g)), 0)
    views = np.where(active, rng.poisson(launches * np.exp(1.0 + 0.2 * g)), 0)
    completion_logit = 0.2 + 0.6 * q[:, None] + 2.0 * kappa[:, None] * c[None, :] + 0.5 * rng.standard_normal((n, L))
    completion = np.where(active, 1.0 / (1.0 + np.exp(-completion_logit)), 0.0)
    streak = _streaks(active)
    sequences = np.stack([session, views, launches, completion, streak], axis=-1).astype(np.float32)

    logit_p = (-1.2 + app_effect[app] + 0.4 * ios + propensity_effect * pi + 0.6 * e + trend_effect * tau
               + completion_effect * kappa)
    p = 1.0 / (1.0 + np.exp(-logit_p))
    mu = 2.5 + _MM_COUNTRY_LOC[country] + 0.5 * pi + 0.3 * e + 0.5 * trend_effect * tau
    expected = p * np.exp(mu + 0.5 * amount_sigma**2)
    revenue = np.where(rng.random(n) < p, np.exp(mu + amount_sigma * rng.standard_normal(n)), 0.0)
    # Last window's revenue: the same propensity and level, not the trend (it predates the recent trajectory).
    p_past = 1.0 / (1.0 + np.exp(-(-1.4 + app_effect[app] + propensity_effect * pi + 0.6 * e)))
    mu_past = 2.5 + _MM_COUNTRY_LOC[country] + 0.5 * pi + 0.3 * e
    past = np.where(rng.random(n) < p_past, np.exp(mu_past + amount_sigma * rng.standard_normal(n)), 0.0)

    days = np.maximum(mask.sum(axis=1), 1)
    n_active = active.sum(axis=1)
    frame = pd.DataFrame({
        "app": [f"app{j}" for j in app],
        "platform": np.asarray(_MM_PLATFORMS)[ios.astype(int)],
        "country": np.asarray(_MM_COUNTRIES)[country],
        "account_age_days": age.astype(np.float64),
        "active_days": n_active.astype(np.float64),
        "active_share": n_active / days,
        "total_sessions": launches.sum(axis=1).astype(np.float64),
        "total_session_minutes": session.sum(axis=1),
        "total_views": views.sum(axis=1).astype(np.float64),
        "avg_completion": np.where(n_active > 0, completion.sum(axis=1) / np.maximum(n_active, 1), 0.0),
        "max_streak": streak.max(axis=1).astype(np.float64),
        "past_revenue": past,
        "revenue": revenue,
        "expected_revenue": expected,
    }, index=pd.Index([f"u{i:06d}" for i in range(n)], name="customer_id"))
    numeric = ("account_age_days", "active_days", "active_share", "total_sessions", "total_session_minutes",
               "total_views", "avg_completion", "max_streak", "past_revenue")
    log1p = ("account_age_days", "total_sessions", "total_session_minutes", "total_views", "past_revenue")
    return MultimodalSample(frame, sequences, mask, MULTIMODAL_CHANNELS, numeric, ("app", "platform", "country"),
                            log1p)
