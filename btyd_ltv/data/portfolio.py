"""Seeded synthetic game portfolio: cohort x age installs, actives, payers, revenue and cost with known LTV truth.

The portfolio is a three-level hierarchy, apps > campaigns > daily cohorts, built to test hierarchical cohort
LTV models (retention curve x revenue per active user, partially pooled over cohorts within campaigns within
apps) and to backtest their forecasts against curves that are known exactly.

Retention ("classic Dn": the share of a cohort's installs active on day ``t`` after install) has the
activity-times-survival form of the BG/BB model (Fader, Hardie & Shang 2010, "Customer-base analysis in a
discrete-time noncontractual setting", Marketing Science 29(6)): a user is alive until she churns and, while
alive, is active on a day with probability ``p ~ Beta(alpha, beta)``; her churn probability is
``theta ~ Beta(gamma, delta)``. With ``pi = alpha / (alpha + beta)``

    E[active on day t] = pi * S(t)   (t >= 1),    1 at t = 0 (everybody is active on the install day),

where the survival ``S(t) = P(alive at t)`` comes from one of two families:

- ``"bgbb"``: beta-geometric (shifted-beta-geometric) survival, ``S(t) = B(gamma, delta + t) / B(gamma, delta)``
  (Fader & Hardie 2007, "How to project customer retention", J. Interactive Marketing 21(1); the alive process of
  BG/BB). Game-like: low ``pi`` and fast early decay.
- ``"bdw"``: beta-discrete-Weibull survival, ``S(t) = B(gamma, delta + t^c) / B(gamma, delta)`` (Fader, Hardie,
  Liu, Davin & Steenburgh 2018, '"How to project customer retention" revisited: the role of duration
  dependence', J. Interactive Marketing 43, where the Beta parameters are called ``(a, b)``); each alive user
  churns in period ``t`` with probability ``1 - (1 - theta)^(t^c - (t-1)^c)``, so ``c < 1`` adds individual
  hazards that fall with tenure and ``c = 1`` is the sBG. Subscription-like: ``pi`` near 1, slower decay.

Revenue per daily active user (ARPDAU) at age ``t`` is ``level * (1 + t)^rho`` with ``rho > 0`` typically:
survivor selection concentrates payers among long-tenured users. The payer rate rises with half of that
exponent, ``q_t = min(q0 (1 + t)^(rho / 2), 0.5)``, and the expected spend of a paying user is
``e_t = ARPDAU_t / q_t``. Each cohort-day is drawn at the aggregate level, without simulating users:

    active  ~ Binomial(installs, retention_t)
    payers  ~ Binomial(active, q_t)
    regular ~ Gamma(shape = payers * k, scale = (1 - s) e_t / k)     (sum of ``payers`` iid Gamma(k) amounts)
    whales  ~ Binomial(payers, w);  each whale adds LogNormal(mu_t, sigma) with mean s e_t / w
    revenue = regular + whale purchases

so ``E[revenue | active] = active * q_t * ((1 - s) e_t + w * s e_t / w) = active * ARPDAU_t`` exactly, and the
true expected revenue per install at age ``t`` is ``retention_t * ARPDAU_t`` (``s`` is the whales' share of the
revenue; ``w`` is small, so a whale purchase is a rare, large spike). LTV per install is its cumulative sum.

Hierarchy: every app draws its own retention and monetisation hyper-parameters (on logit / log scales, around
family-specific centres); each campaign adds a normal perturbation on those scales and each daily cohort a
smaller one. Every campaign buys installs at a cost per install (CPI) drawn around the app's CPI, which is the
app's typical 365-day LTV per install divided by a target ROAS near 1, so some campaigns pay back by day 365
and some do not. A cohort's cost is ``installs * CPI * LogNormal(0, 0.05)``.

Calendar effects (``calendar=``, off by default): the portfolio's market moves every cohort alive on a calendar day
together. ``calendar={"retention": (sd, phi), "revenue": (sd, phi)}`` draws a stationary Gaussian AR(1) process per
named curve over calendar days ``0 .. days - 1 + horizon`` with stationary sd ``sd``,
``x_d = phi x_{d-1} + sd sqrt(1 - phi^2) z_d`` and ``x_0 ~ N(0, sd^2)``, and multiplies a cohort acquired on day
``a`` by ``exp(x_{a + t})`` at age ``t``: retention for ``t >= 1`` (capped at 1), ARPDAU at every age. The truth
curves include the realised process (the expected curves given the market), which :attr:`PortfolioTruth.calendar`
records.

Counts on different days of one cohort are conditionally independent given the truth (the aggregate binomial
likelihood most cohort-curve models assume), not a panel of the same users.

Everything is vectorised over cohorts and ages (Python loops only build the app / campaign / day labels) and
reproducible from ``seed``: parameters, installs and outcomes come from separate streams spawned from
``np.random.default_rng(seed)``, and the whole ``cohort x age`` grid up to ``horizon`` is drawn before it is
censored, so the same seed with a later ``observation_end_day`` extends every cohort's rows without changing
the ones already there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy.special import betaln, expit, logit

from btyd_ltv.errors import DataValidationError

__all__ = [
    "RETENTION_FAMILIES",
    "PortfolioTruth",
    "bdw_survival",
    "expected_arpdau",
    "expected_retention",
    "sbg_survival",
    "simulate_portfolio",
]

RETENTION_FAMILIES = ("bgbb", "bdw")

# Parameters that vary by app, campaign and cohort, on their unconstrained scales.
_PARAMS = ("logit_pi", "logit_churn", "log_phi", "log_c", "log_level", "rho", "logit_payer")
# App-level centres and spreads per retention family. ``churn = gamma / (gamma + delta)`` is the day-1 churn
# probability and ``phi = gamma + delta`` the concentration of the churn-probability Beta.
_APP_MEAN = {
    "bgbb": np.array([logit(0.5), logit(0.25), np.log(3.0), 0.0, np.log(0.08), 0.25, logit(0.025)]),
    "bdw": np.array([logit(0.8), logit(0.2), np.log(2.5), np.log(0.8), np.log(0.08), 0.2, logit(0.03)]),
}
_APP_SD = {
    "bgbb": np.array([0.3, 0.3, 0.25, 0.0, 0.35, 0.08, 0.3]),
    "bdw": np.array([0.3, 0.3, 0.25, 0.15, 0.35, 0.08, 0.3]),
}
_CAMPAIGN_SD = np.array([0.25, 0.25, 0.15, 0.05, 0.2, 0.03, 0.2])
_COHORT_SD = np.array([0.08, 0.08, 0.05, 0.02, 0.1, 0.01, 0.08])
_CPI_SD = 0.35  # log-scale spread of campaign CPIs around the app's CPI
_TARGET_ROAS_SD = 0.2  # log-scale spread of the apps' target 365-day ROAS around 1
_COST_NOISE_SD = 0.05
_INSTALLS_NOISE_SD = 0.3  # day-to-day log-scale spread of a campaign's installs
_MAX_PAYER_RATE = 0.5
_PRICING_AGE = 365


def _as_age(t: np.ndarray | float) -> np.ndarray:
    return np.asarray(t, dtype=np.float64)


def sbg_survival(t: np.ndarray | float, gamma: np.ndarray | float, delta: np.ndarray | float) -> np.ndarray:
    """Shifted-beta-geometric survival ``P(T > t) = B(gamma, delta + t) / B(gamma, delta)``.

    Each user churns at the start of every period with probability ``theta ~ Beta(gamma, delta)``, so
    ``P(T > t | theta) = (1 - theta)^t`` and integrating over ``theta`` gives the ratio of Beta functions
    (Fader & Hardie 2007, "How to project customer retention"; the alive process of BG/BB, Fader, Hardie &
    Shang 2010). Computed with ``betaln``; broadcasts over its arguments.
    """
    t = _as_age(t)
    return np.exp(betaln(gamma, delta + t) - betaln(gamma, delta))


def bdw_survival(
    t: np.ndarray | float, gamma: np.ndarray | float, delta: np.ndarray | float, c: np.ndarray | float
) -> np.ndarray:
    """Beta-discrete-Weibull survival ``P(T > t) = B(gamma, delta + t^c) / B(gamma, delta)``.

    Fader, Hardie, Liu, Davin & Steenburgh (2018), '"How to project customer retention" revisited', with their
    ``(a, b)`` written ``(gamma, delta)``: given ``theta ~ Beta(gamma, delta)`` the discrete-Weibull survival is
    ``(1 - theta)^(t^c)``, i.e. an alive user churns in period ``t`` with probability
    ``1 - (1 - theta)^(t^c - (t-1)^c)``. ``c = 1`` is the sBG (:func:`sbg_survival`); ``c < 1`` (``c > 1``) makes
    each user's hazard fall (rise) with tenure. Broadcasts over its arguments.
    """
    t = _as_age(t)
    return np.exp(betaln(gamma, delta + t ** np.asarray(c, dtype=np.float64)) - betaln(gamma, delta))


def expected_retention(
    t: np.ndarray | float,
    *,
    pi: np.ndarray | float,
    gamma: np.ndarray | float,
    delta: np.ndarray | float,
    c: np.ndarray | float = 1.0,
) -> np.ndarray:
    """Expected share of a cohort active on day ``t`` after install: ``pi * S(t)`` for ``t >= 1``, 1 at ``t = 0``.

    Activity-times-survival form of BG/BB (Fader, Hardie & Shang 2010): while alive a user is active on a day
    with probability ``p ~ Beta(alpha, beta)``, independent of her churn probability, so
    ``E[active] = E[p] P(alive at t) = pi B(gamma, delta + t^c) / B(gamma, delta)`` with
    ``pi = alpha / (alpha + beta)``; ``c = 1`` is the BG/BB alive process, other ``c`` the BdW survival
    (:func:`bdw_survival`). The install day (``t = 0``) is active for everybody.
    """
    t = _as_age(t)
    return np.where(t == 0, 1.0, pi * bdw_survival(t, gamma, delta, c))


def expected_arpdau(t: np.ndarray | float, *, level: np.ndarray | float, rho: np.ndarray | float) -> np.ndarray:
    """Expected revenue per daily active user at age ``t``: ``level * (1 + t)^rho`` (whales included)."""
    return level * (1.0 + _as_age(t)) ** rho


def _payer_rate(t: np.ndarray, payer_rate: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """Share of active users who pay on day ``t``: ``min(q0 (1 + t)^(rho / 2), 0.5)``."""
    return np.minimum(payer_rate * (1.0 + t) ** (rho / 2.0), _MAX_PAYER_RATE)


@dataclass(frozen=True, eq=False)
class PortfolioTruth:
    """Ground truth behind :func:`simulate_portfolio`.

    ``apps``, ``campaigns`` and ``cohorts`` hold the true parameters on their natural scales (``pi``, ``alpha``,
    ``beta``, ``gamma``, ``delta``, ``c``, ``level``, ``rho``, ``payer_rate``; apps also the monetisation tail
    ``payer_shape`` (Gamma shape ``k`` of a payer's daily amount), ``whale_rate`` (``w``, per payer-day),
    ``whale_share`` (``s``), ``whale_sigma`` and their ``target_roas``). ``cohorts`` is in the order of the
    simulated table and also holds ``acquired_day``, ``installs``, ``cpi``, ``cost``, ``ltv`` (LTV per install at
    ``horizon``) and ``roas`` (``installs * ltv / cost``).

    ``retention``, ``arpdau`` and ``ltv`` are ``(n_cohorts, horizon + 1)`` arrays over ages ``0 .. horizon``,
    rows in the order of ``cohorts``: the expected share active, the expected revenue per active user and
    ``ltv[:, t] = sum_{u <= t} retention[:, u] * arpdau[:, u]``, the expected cumulative revenue per install.
    ``calendar``: with calendar effects, the realised log effects per calendar day (columns ``day`` and one per
    effect, ``retention`` / ``revenue``), already included in ``retention`` and ``arpdau``; ``None`` without.
    """

    apps: pd.DataFrame
    campaigns: pd.DataFrame
    cohorts: pd.DataFrame
    retention: np.ndarray
    arpdau: np.ndarray
    ltv: np.ndarray
    horizon: int
    observation_end_day: int
    calendar: pd.DataFrame | None = None

    @property
    def ages(self) -> np.ndarray:
        return np.arange(self.horizon + 1)

    @property
    def revenue_per_install(self) -> np.ndarray:
        """Expected revenue per install on day ``t``: ``retention * arpdau``, shape ``(n_cohorts, horizon + 1)``."""
        return self.retention * self.arpdau

    def curves(self) -> pd.DataFrame:
        """Long table ``cohort, age, retention, arpdau, revenue_per_install, ltv`` over ages ``0 .. horizon``."""
        n, m = self.retention.shape
        return pd.DataFrame(
            {
                "cohort": np.repeat(self.cohorts["cohort"].to_numpy(), m),
                "age": np.tile(self.ages, n),
                "retention": self.retention.ravel(),
                "arpdau": self.arpdau.ravel(),
                "revenue_per_install": self.revenue_per_install.ravel(),
                "ltv": self.ltv.ravel(),
            }
        )

    def roas(self, age: int | None = None, level: Literal["cohort", "campaign", "app"] = "cohort") -> pd.Series:
        """True ROAS at ``age`` (default ``horizon``): expected revenue ``installs * LTV(age)`` over cost.

        ``level="campaign"`` / ``"app"`` pools the cohorts: ``sum(installs * LTV) / sum(cost)``.
        """
        age = self.horizon if age is None else int(age)
        if not 0 <= age <= self.horizon:
            raise DataValidationError(f"age={age!r} must be in 0..horizon={self.horizon}")
        if level not in ("cohort", "campaign", "app"):
            raise DataValidationError(f"level={level!r} must be 'cohort', 'campaign' or 'app'")
        revenue = self.cohorts["installs"].to_numpy() * self.ltv[:, age]
        frame = pd.DataFrame({level: self.cohorts[level], "revenue": revenue, "cost": self.cohorts["cost"]})
        sums = frame.groupby(level, sort=False)[["revenue", "cost"]].sum()
        return (sums["revenue"] / sums["cost"]).rename("roas")


def _check_calendar(calendar: Mapping[str, tuple[float, float]] | None) -> dict[str, tuple[float, float]]:
    """``calendar`` of :func:`simulate_portfolio` checked: known effects, ``sd >= 0`` and ``0 <= phi < 1``."""
    if not calendar:
        return {}
    out = {}
    for effect, value in dict(calendar).items():
        if effect not in ("retention", "revenue"):
            raise DataValidationError(f"calendar: {effect!r} is not 'retention' or 'revenue'")
        try:
            sd, phi = (float(v) for v in value)
        except (TypeError, ValueError):
            raise DataValidationError(f"calendar[{effect!r}]={value!r} must be a pair (sd, phi)") from None
        if not (np.isfinite(sd) and sd >= 0.0 and 0.0 <= phi < 1.0):
            raise DataValidationError(f"calendar[{effect!r}]=({sd}, {phi}) needs sd >= 0 and 0 <= phi < 1 (a "
                                      "stationary AR(1) process)")
        out[effect] = (sd, phi)
    return out


def _check_int(name: str, value: int, low: int, why: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise DataValidationError(f"{name}={value!r} must be an integer >= {low}{why}")
    return int(value)


def _families(retention: str | Sequence[str], n_apps: int) -> list[str]:
    if isinstance(retention, str):
        if retention == "mix":
            return [RETENTION_FAMILIES[i % 2] for i in range(n_apps)]
        retention = [retention] * n_apps
    families = list(retention)
    if len(families) != n_apps:
        raise DataValidationError(f"retention has {len(families)} families for n_apps={n_apps}; give one per app")
    for i, fam in enumerate(families):
        if fam not in RETENTION_FAMILIES:
            raise DataValidationError(
                f"retention family {fam!r} of app{i + 1} is not one of {RETENTION_FAMILIES} (or 'mix' for all apps)"
            )
    return families


def _natural(theta: np.ndarray) -> dict[str, np.ndarray]:
    """Unconstrained parameters (``..., len(_PARAMS)``) -> retention and monetisation parameters."""
    pi, churn, phi = expit(theta[..., 0]), expit(theta[..., 1]), np.exp(theta[..., 2])
    return {
        "pi": pi,
        "gamma": churn * phi,
        "delta": (1.0 - churn) * phi,
        "c": np.exp(theta[..., 3]),
        "level": np.exp(theta[..., 4]),
        "rho": theta[..., 5],
        "payer_rate": expit(theta[..., 6]),
    }


def simulate_portfolio(
    *,
    n_apps: int = 3,
    campaigns_per_app: int = 3,
    days: int = 120,
    cohorts_per_day: int = 1,
    horizon: int = 365,
    installs_range: tuple[int, int] = (1000, 20000),
    observation_end_day: int | None = None,
    retention: str | Sequence[str] = "mix",
    calendar: Mapping[str, tuple[float, float]] | None = None,
    seed: int | np.random.SeedSequence | None,
) -> tuple[pd.DataFrame, PortfolioTruth]:
    """Simulate a portfolio of apps > campaigns > daily cohorts and return ``(table, truth)``.

    Every campaign of every app acquires ``cohorts_per_day`` cohorts on each calendar day ``0 .. days - 1``.
    Cohort ``app{i}/camp{j}/d{day}`` (suffixed ``/s{k}`` when ``cohorts_per_day > 1``) is observed on the
    calendar days up to ``observation_end_day`` (default ``days - 1``, the last acquisition day), i.e. at ages
    ``0 .. min(observation_end_day - acquired_day, horizon)``: old cohorts have long histories, the youngest
    only its install day. ``retention`` picks the survival family per app: ``"bgbb"`` (game-like BG/BB),
    ``"bdw"`` (subscription-like beta-discrete-Weibull), a list with one family per app, or ``"mix"``
    (alternating, starting with ``"bgbb"``). The generative model and its references are in the module
    docstring; expected curves are computed in closed form (:func:`expected_retention`,
    :func:`expected_arpdau`), never by simulation. ``calendar`` adds calendar-day effects shared by every cohort
    (module docstring: ``{"retention": (sd, phi), "revenue": (sd, phi)}``, either key optional; drawn from a
    stream of their own, so the rest of the portfolio is the same as without them).

    A campaign's daily installs are its volume (log-uniform on ``installs_range``) times
    ``LogNormal(0, 0.3)``, clipped to ``installs_range``. The table has one row per observed cohort x age,
    sorted by app, campaign, day and age, with columns ``cohort``, ``app``, ``campaign`` (``app{i}/camp{j}``),
    ``acquired_day``, ``age``, ``installs``, ``active_users``, ``payers``, ``revenue`` and ``cost`` (the cohort's
    total acquisition cost, repeated on each of its rows). ``table.attrs`` records ``observation_end_day`` and
    ``horizon``.
    """
    n_apps = _check_int("n_apps", n_apps, 1)
    n_camp = _check_int("campaigns_per_app", campaigns_per_app, 1)
    days = _check_int("days", days, 1)
    per_day = _check_int("cohorts_per_day", cohorts_per_day, 1)
    horizon = _check_int("horizon", horizon, 0)
    end = days - 1 if observation_end_day is None else observation_end_day
    end = _check_int("observation_end_day", end, days - 1, " (days - 1, the last acquisition day)")
    try:
        lo, hi = (int(v) for v in installs_range)
    except (TypeError, ValueError):
        raise DataValidationError(
            f"installs_range={installs_range!r} must be a pair (low, high) of integers"
        ) from None
    if not 1 <= lo <= hi:
        raise DataValidationError(f"installs_range={installs_range!r} must satisfy 1 <= low <= high")
    families = _families(retention, n_apps)
    calendar = _check_calendar(calendar)

    # spawn(5)'s first four children are spawn(4)'s: calendar effects leave every other draw unchanged
    app_rng, camp_rng, cohort_rng, outcome_rng, calendar_rng = np.random.default_rng(seed).spawn(5)
    P = len(_PARAMS)

    # --- apps: hyper-parameters, monetisation tail and pricing -------------------------------------------------
    mean = np.stack([_APP_MEAN[f] for f in families])
    sd = np.stack([_APP_SD[f] for f in families])
    theta_app = mean + sd * app_rng.standard_normal((n_apps, P))
    kappa = np.exp(np.log(2.0) + 0.3 * app_rng.standard_normal(n_apps))  # alpha + beta of the activity Beta
    payer_shape = np.exp(np.log(0.8) + 0.2 * app_rng.standard_normal(n_apps))
    whale_rate = np.exp(np.log(0.002) + 0.3 * app_rng.standard_normal(n_apps))
    whale_share = app_rng.uniform(0.1, 0.3, n_apps)
    whale_sigma = app_rng.uniform(0.8, 1.2, n_apps)
    target_roas = np.exp(_TARGET_ROAS_SD * app_rng.standard_normal(n_apps))
    nat = _natural(theta_app)
    t_price = np.arange(_PRICING_AGE + 1.0)
    ltv_price = np.sum(
        expected_retention(t_price, pi=nat["pi"][:, None], gamma=nat["gamma"][:, None], delta=nat["delta"][:, None],
                           c=nat["c"][:, None])
        * expected_arpdau(t_price, level=nat["level"][:, None], rho=nat["rho"][:, None]),
        axis=1,
    )
    cpi_app = ltv_price / target_roas

    # --- campaigns --------------------------------------------------------------------------------------------
    c_free = np.array([f == "bdw" for f in families], dtype=np.float64)  # c stays 1 in BG/BB apps
    mask = np.ones((n_apps, P))
    mask[:, 3] = c_free
    theta_camp = theta_app[:, None, :] + (mask * _CAMPAIGN_SD)[:, None, :] * camp_rng.standard_normal(
        (n_apps, n_camp, P)
    )
    cpi_camp = cpi_app[:, None] * np.exp(_CPI_SD * camp_rng.standard_normal((n_apps, n_camp)))
    log_lo, log_hi = np.log(lo), np.log(hi)
    volume = np.exp(camp_rng.uniform(log_lo, log_hi, (n_apps, n_camp)))

    # --- cohorts (a, j, day, slot) flattened in that order ------------------------------------------------------
    shape = (n_apps, n_camp, days, per_day)
    theta = theta_camp[:, :, None, None, :] + (mask * _COHORT_SD)[:, None, None, None, :] * cohort_rng.standard_normal(
        (*shape, P)
    )
    installs = np.rint(
        np.clip(volume[:, :, None, None] * np.exp(_INSTALLS_NOISE_SD * cohort_rng.standard_normal(shape)), lo, hi)
    ).astype(np.int64)
    cost_noise = np.exp(_COST_NOISE_SD * cohort_rng.standard_normal(shape))
    a_idx, j_idx, d_idx, s_idx = (g.ravel() for g in np.indices(shape))
    theta = theta.reshape(-1, P)
    installs = installs.ravel()
    cpi = cpi_camp[a_idx, j_idx]
    cost = installs * cpi * cost_noise.ravel()
    co = _natural(theta)

    # --- truth curves over ages 0 .. horizon -------------------------------------------------------------------
    t = np.arange(horizon + 1.0)
    col = {k: v[:, None] for k, v in co.items()}
    ret = expected_retention(t, pi=col["pi"], gamma=col["gamma"], delta=col["delta"], c=col["c"])
    arpdau = expected_arpdau(t, level=col["level"], rho=col["rho"])
    calendar_table = None
    if calendar:
        from scipy.signal import lfilter  # only here: scipy.signal is slow to import

        n_days = days + horizon
        calendar_table = pd.DataFrame({"day": np.arange(n_days)})
        day = d_idx[:, None] + t.astype(np.int64)[None, :]
        for effect in ("retention", "revenue"):
            if effect not in calendar:
                continue
            sd, phi = calendar[effect]
            z = calendar_rng.standard_normal(n_days)
            innovations = sd * np.sqrt(1.0 - phi**2) * z
            innovations[0] = sd * z[0]  # the stationary start
            x = lfilter([1.0], [1.0, -phi], innovations)  # x_d = phi x_{d-1} + innovation_d
            calendar_table[effect] = x
            if effect == "retention":
                ret = np.where(t[None, :] >= 1, np.minimum(ret * np.exp(x[day]), 1.0), ret)
            else:
                arpdau = arpdau * np.exp(x[day])
    ltv = np.cumsum(ret * arpdau, axis=1)

    # --- outcomes on the full grid, then censored ---------------------------------------------------------------
    q = _payer_rate(t, col["payer_rate"], col["rho"])
    spend = arpdau / q  # expected daily spend of a paying user, whales included
    k = payer_shape[a_idx][:, None]
    w = whale_rate[a_idx][:, None]
    s = whale_share[a_idx][:, None]
    active = outcome_rng.binomial(installs[:, None], ret)
    payers = outcome_rng.binomial(active, q)
    paying = payers > 0
    regular = np.where(paying, outcome_rng.gamma(np.where(paying, payers * k, 1.0), (1.0 - s) * spend / k), 0.0)
    whales = outcome_rng.binomial(payers, np.broadcast_to(w, payers.shape)).ravel()
    cell = np.repeat(np.arange(whales.size), whales)
    sigma = np.broadcast_to(whale_sigma[a_idx][:, None], payers.shape).ravel()[cell]
    whale_mean = (s * spend / w).ravel()[cell]
    amounts = outcome_rng.lognormal(np.log(whale_mean) - sigma**2 / 2.0, sigma)
    revenue = regular + np.bincount(cell, weights=amounts, minlength=whales.size).reshape(payers.shape)

    # --- labels ---------------------------------------------------------------------------------------------------
    width = max(3, len(str(days - 1)))
    app_lbl = np.array([f"app{i + 1}" for i in range(n_apps)], dtype=object)
    camp_lbl = np.array([[f"app{i + 1}/camp{j + 1}" for j in range(n_camp)] for i in range(n_apps)], dtype=object)
    day_lbl = np.array([f"/d{d:0{width}d}" for d in range(days)], dtype=object)
    cohort_id = camp_lbl[a_idx, j_idx] + day_lbl[d_idx]
    if per_day > 1:
        cohort_id = cohort_id + np.array([f"/s{i}" for i in range(per_day)], dtype=object)[s_idx]
    app_col, camp_col = app_lbl[a_idx], camp_lbl[a_idx, j_idx]

    observed = t[None, :] <= (end - d_idx)[:, None]
    n_obs = observed.sum(axis=1)
    rows = np.repeat(np.arange(installs.size), n_obs)
    table = pd.DataFrame(
        {
            "cohort": cohort_id[rows].astype(str),
            "app": app_col[rows].astype(str),
            "campaign": camp_col[rows].astype(str),
            "acquired_day": d_idx[rows].astype(np.int64),
            "age": np.broadcast_to(t.astype(np.int64), observed.shape)[observed],
            "installs": installs[rows],
            "active_users": active[observed].astype(np.int64),
            "payers": payers[observed].astype(np.int64),
            "revenue": revenue[observed],
            "cost": cost[rows],
        }
    )
    table.attrs.update(observation_end_day=end, horizon=horizon)

    # --- parameter tables ------------------------------------------------------------------------------------------
    def params(nat: dict[str, np.ndarray], kap: np.ndarray) -> dict[str, np.ndarray]:
        return {
            "pi": nat["pi"], "alpha": nat["pi"] * kap, "beta": (1.0 - nat["pi"]) * kap, "gamma": nat["gamma"],
            "delta": nat["delta"], "c": nat["c"], "level": nat["level"], "rho": nat["rho"],
            "payer_rate": nat["payer_rate"],
        }

    apps = pd.DataFrame(
        {"app": app_lbl.astype(str), "retention": families, **params(nat, kappa), "payer_shape": payer_shape,
         "whale_rate": whale_rate, "whale_share": whale_share, "whale_sigma": whale_sigma,
         "target_roas": target_roas, "cpi": cpi_app}
    )
    ca, cj = (g.ravel() for g in np.indices((n_apps, n_camp)))
    campaigns = pd.DataFrame(
        {"campaign": camp_lbl.ravel().astype(str), "app": app_lbl[ca].astype(str),
         **params(_natural(theta_camp.reshape(-1, P)), kappa[ca]), "cpi": cpi_camp.ravel(),
         "volume": volume.ravel()}
    )
    cohorts = pd.DataFrame(
        {"cohort": cohort_id.astype(str), "app": app_col.astype(str), "campaign": camp_col.astype(str),
         "acquired_day": d_idx.astype(np.int64), **params(co, kappa[a_idx]), "installs": installs, "cpi": cpi,
         "cost": cost, "ltv": ltv[:, -1], "roas": installs * ltv[:, -1] / cost}
    )
    truth = PortfolioTruth(
        apps=apps, campaigns=campaigns, cohorts=cohorts, retention=ret, arpdau=arpdau, ltv=ltv, horizon=horizon,
        observation_end_day=end, calendar=calendar_table,
    )
    return table, truth
