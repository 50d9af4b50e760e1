"""Hierarchical cohort LTV curves: retention x revenue per active user, partially pooled across cohorts.

For cohort ``c`` with ``N_c`` installs at age ``t`` (0-based periods since acquisition):

**Retention** ``s_c(t)``, the expected share of installs active at age ``t`` (``s_c(0) = 1``), is
``pi * S(t)`` for ``t >= 1`` with survival ``S`` from the beta-discrete-Weibull family (Fader, Hardie, Liu,
Davin & Steenburgh 2018, '"How to project customer retention" revisited: the role of duration dependence',
J. Interactive Marketing 43, eq. 6)::

    S(t) = B(a, b + t^c) / B(a, b),        a = m kappa,  b = (1 - m) kappa

Four families (``retention=``):

* ``"bdw"``: ``pi = 1`` and ``c`` free -- subscription-like data where "active" means "has not churned";
  ``c = 1`` is the shifted-beta-geometric model (Fader & Hardie 2007, "How to project customer retention",
  J. Interactive Marketing 21(1), eq. 7), ``c < 1`` lets individual churn hazards fall with tenure.
* ``"bgbb"``: ``c = 1`` and ``pi`` free -- the activity-times-survival form of the BG/BB model (Fader, Hardie &
  Shang 2010, Marketing Science 29(6)): alive users are active on a day with probability ``pi``, so
  ``E[active at t] = pi B(gamma, delta + t) / B(gamma, delta)``. Games' classic "Dn retention", where many
  installs are not seen on day 1 but survivors keep coming back.
* ``"bgbb-dw"``: both ``pi`` and ``c`` free (activity x BdW survival); the most flexible, the slowest to fit.
* ``"bgbb-ms"``: ``pi`` free and a share ``w`` of stayers who never churn (the mover-stayer model: Blumen,
  Kogan & McCarthy 1955, "The industrial mobility of labor as a probability process", Cornell Studies in
  Industrial and Labor Relations 6; Goodman 1961, JASA 56(296)): survival ``w + (1 - w) S(t)``, so retention
  levels off at ``pi w`` instead of decaying as the sBG tail's power law ``t^-a``. For curves that fall for a
  while and then stay flat. Before the curve has levelled off in the data, ``w`` is barely identified: on CDNOW
  it improved the week-52 forecasts made from 8 weeks and made those from 4 weeks slightly worse
  (validation/README.md).

Parameters live on interpretable scales: mean churn ``m = a / (a + b)`` (``logit_churn``), polarisation
``kappa = a + b`` (``log_kappa``), ``log_c``, ``logit_pi`` and the stayers' share ``logit_stay``.

**Revenue per active user** ``arpdau_c(t) = exp(level_c) (1 + t)^rho_c`` (``log_level``, ``rho``); ``rho > 0``
is ARPDAU rising with tenure through survivor selection. That log-linear tenure term (``tenure="log"``) keeps
rising at the rate its data show; ``tenure="saturating"`` replaces ``log(1 + t)`` by its Box-Cox transform with a
negative exponent (Box & Cox 1964, JRSS B 26(2))::

    h(t) = (1 - (1 + t)^-sigma) / sigma,    log arpdau_c(t) = level_c + rho_c (h(t) - h(t_ref))

so revenue per active user rises with initial log-log slope ``rho`` and levels off at ``rho / sigma`` above its
day-0 value; ``sigma -> 0`` is the log-linear term. The saturation rate ``sigma`` (``log_saturation``) is one
portfolio-level parameter. For revenue per active user that rises over the first periods and then stays flat
(CDNOW's weekly cohorts), where the log-linear term fitted to a few periods carries the early rise on for ever.

**Hierarchy.** Every parameter has a portfolio mean and one normal level per grouping column (nested in the
order given: campaign within app), and the parameters in ``cohort_effects`` (by default the retention level,
``log_ret`` or ``logit_churn``, and ``log_level``) also a cohort level::

    theta_app ~ N(mu, sd_app),  theta_campaign ~ N(theta_app[parent], sd_campaign),
    theta_cohort ~ N(theta_campaign[parent], sd_cohort)

so the curve shape (polarisation, Weibull ``c``, tenure slope ``rho``) and in particular the tail of a young
cohort come from the mature cohorts of its campaign and app. Each element is parameterised centred when data
pin it down (every group, which pools many cohorts; a cohort's retention level once it has
``centered_min_actives`` active-user observations, its revenue level once it has ``centered_min_ages`` cells with
revenue, its curve shape and tenure slope only with that and ``centered_min_shape_ages`` observed ages) and
non-centred otherwise (Papaspiliopoulos, Roberts & Skoeld 2007, Statistical Science 22(1)): a well observed
cohort of 100k installs has a posterior sd far below its prior sd, where the non-centred form is the funnel.
At its finest level a centred ``log_kappa`` is sampled as ``log a = log m + log kappa`` (the exponent of the
survival curve's power-law tail, which long curves pin to about 1e-3) instead of ``log kappa``, whose posterior
correlation with ``logit_churn`` is about -0.99 there; the Jacobian is 1 and the prior stays normal on
``log_kappa``, so the model is unchanged and only the sampler's coordinates differ. Likewise a centred cohort
retention level is sampled as ``log_ret + log S(t*) - log S(ref_age)``, the log retention its curve has at its
effective age ``t*`` (the information-weighted geometric mean of its observed ages) given its group's shape: the
quantity its data pin whatever the shape, so the level no longer has to move with every step of the campaign's
churn and polarisation (``level_offsets=False`` in :func:`make_data` samples ``log_ret`` itself).
Above the finest level, the group elements and the portfolio mean are *anchored* on the centred elements below
them: each is sampled as ``eta`` with ``theta_j = m_j + s_j eta``, where ``N(m_j, s_j^2)`` is its exact normal
conditional given its parent, the between-group sds and the centred elements of its subtree (backward
filtering, forward sampling on the tree), so ``eta`` stays a standard normal whatever the sds; the Jacobian is
added to the density. A group element none of whose children is centred is itself centred (:func:`independent`).
``anchored=False`` in :func:`make_data` samples every group element relative to its parent instead (same model).

**Likelihood** on cohort x age cells (its cost grows with cells, never with users):

* ``active_{c,t}``, ``t >= 1``: beta-binomial with mean ``N s`` and overdispersion ``phi`` (``log_phi``),
  ``Var = N s (1 - s) (1 + (N - 1) / (phi + 1))``; ``likelihood="normal"`` uses the normal distribution with
  the same two moments (no log-gamma calls: several times faster on big portfolios, indistinguishable when
  counts are large);
* ``revenue_{c,t}``: zero-inflated log-normal (Wang, Liu & Miao 2019) given the ``A`` active users (or
  ``N s(t)`` when ``active_users`` is not given): ``P(revenue > 0) = 1 - exp(-nu A)`` (Poisson purchase
  occurrences at rate ``nu`` per active user), and the positive part log-normal with mean
  ``A arpdau / P(revenue > 0)`` and squared coefficient of variation ``1 / (k A) + tau^2`` (user-level noise
  that averages out in big cohorts plus day-level noise -- whales, promotions -- that does not). So
  ``E[revenue] = A arpdau`` exactly. ``revenue_likelihood="gamma"`` makes the positive part gamma with the
  same mean and ``CV^2`` (shape ``1 / CV^2``): a gamma-GLM score, so the mean estimate stays consistent when
  rare whale purchases make the amounts heavier-tailed than either distribution. ``revenue_likelihood="whale"``
  makes the positive part a two-component log-normal mixture: cells without a whale purchase carry the share
  ``1 - s`` of the mean, and with probability ``omega = 1 - exp(-lambda A)`` a cell also holds a
  zero-truncated Poisson number of whale purchases (log-scale sd ``sigma_w`` each) carrying the share ``s``,
  so ``E[revenue] = A arpdau`` still holds exactly while rare spikes no longer drag the level or the tenure
  slope. The whale share ``s`` and rate ``lambda`` vary by the outermost group (apps monetise differently) and
  are non-centred; ``sigma_w`` is shared.
* ``revenue_likelihood="compound"``: a cell's revenue is the sum of its purchases, ``N ~ Poisson(m)`` with
  ``m = nu A`` (the zero process above) and amounts ``Gamma(k)`` with mean ``arpdau / nu`` (the compound
  Poisson-gamma, or Tweedie, law of aggregate claims; Jorgensen 1987, "Exponential dispersion models", JRSS B
  49(2); Smyth & Jorgensen 2002, ASTIN Bulletin 32(1)), times day-level noise of squared CV ``tau^2``. Given
  ``N = n`` the positive part is gamma with mean ``n arpdau / nu`` and ``CV^2 = (1 + 1 / (n k))(1 + tau^2) - 1``
  (exact for ``tau = 0``); the density sums over ``n = 1..96`` while ``m <= 35``, is the gamma with the same
  mean and ``CV^2`` (a sum of many purchases) above ``m = 55`` and blends the two log densities linearly
  between. With few payers per cell the sum's many small values are what neither the log-normal nor the gamma
  with ``CV^2 = 1 / (k A) + tau^2`` can follow, and the whale mixture fitted with those spends its whale
  component on them: on the synthetic game portfolio it under-states the whales' share and the revenue level
  (``validation/whale_share_alone.py``). ``"whale-compound"`` is the whale mixture with compound cells without a
  whale purchase. The series costs about 96 gamma terms per cell: meant for portfolios of thousands, not
  hundreds of thousands, of cells.

**Calendar effects** (``calendar_effects`` in :func:`make_data`, opt-in). Cohorts acquired at period ``a_c`` see
calendar period ``a_c + t`` at age ``t``; seasons, promotions, price changes and a product's decline move every
cohort alive in a period together. ``"revenue"`` adds ``g_{a_c + t}`` to ``log arpdau_c(t)`` and ``"retention"``
adds ``h_{a_c + t}`` to ``log s_c(t)`` for ``t >= 1`` (capped at ``s = 1``), each a stationary Gaussian AR(1)
process over calendar periods from the first acquisition period (Hamilton 1994, "Time series analysis",
ch. 3), non-centred::

    g_0 = sigma_g z_0,   g_p = phi_g g_{p-1} + sigma_g sqrt(1 - phi_g^2) z_p,   z_p ~ N(0, 1),
    sigma_g ~ HalfNormal(calendar_sd),   phi_g ~ Uniform(0, 1)

with ``sigma`` the process's stationary sd (the size of the calendar effects), so a promotion's spike decays at
rate ``phi`` and the curves revert to their long-run level; ``phi`` near 1 is a slowly drifting level. The
offsets are the process minus its mean over the fitted periods ``0..P-1`` (the site ``cal_{effect}`` is the
process itself): the data pin only the sum of the portfolio's levels and that mean, and without the centring the
sampler had to travel along that ridge (the slowest site of the market calibration fits was ``log_ret_mu``).
The forecast continues the process and subtracts the same mean, so it reverts to the long-run level less the
fitted periods' mean, as before in distribution; only the sampler's coordinates change. A random
walk was tried first: on CDNOW it carried a promotion week at the end of the history into every later week. With
the innovation sd as the parameter, the start's sd ``sigma / sqrt(1 - phi^2)`` blows up as ``phi -> 1``: one
chain of a simulated-market calibration fit diverged on every draw there. Age, cohort and period are collinear
(age = period - acquisition), so the process is identified only through the curve's parametric age shape and the
cohort levels' shrinkage; its role is the forecast: :func:`predictive_ltv` continues every draw's process past
the last observed period, so shocks shared by all cohorts widen the intervals of every cohort's future, as they
should when a portfolio moves together.

**Cumulative LTV per install** ``L_c(D) = sum_{t <= D} s_c(t) arpdau_c(t)`` is non-decreasing by construction
for every draw; :func:`predictive_ltv` adds simulated future revenue to the observed cumulative value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np
import pandas as pd

import btyd_ltv._jax  # noqa: F401  (float64)
import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from jax.scipy.special import gammaln, logsumexp

from btyd_ltv.errors import DataValidationError
from btyd_ltv.models import _fused_cells

__all__ = [
    "CohortCurveData", "CohortCurvePriors", "make_data", "model", "log_likelihood", "log_retention",
    "log_arpdau", "total_log_likelihood", "mass_blocks", "warm_start_fixed", "param_names", "cohort_params",
    "expected_revenue_per_install", "expected_components", "predictive_ltv", "is_anchored", "independent", "mu_site",
    "calendar_offsets", "check_population", "family_params", "RETENTION_FAMILIES", "LIKELIHOODS", "REVENUE_LIKELIHOODS",
    "WHALE_LIKELIHOODS", "COMPOUND_LIKELIHOODS", "CALENDAR_EFFECTS", "TENURE_FORMS",
]

RETENTION_FAMILIES = ("bgbb", "bdw", "bgbb-dw", "bgbb-ms")
LIKELIHOODS = ("beta-binomial", "normal")
REVENUE_LIKELIHOODS = ("lognormal", "gamma", "whale", "compound", "whale-compound")
WHALE_LIKELIHOODS = ("whale", "whale-compound")  # with a whale-purchase component (module docstring)
COMPOUND_LIKELIHOODS = ("compound", "whale-compound")  # regular revenue a compound Poisson-gamma sum of purchases
PRECISIONS = ("float64", "float32")
CALENDAR_EFFECTS = ("retention", "revenue")  # curves with an AR(1) process over calendar periods (module docstring)
RETENTION_PARAMS = {
    "bgbb": ("log_ret", "logit_churn", "log_kappa"),
    "bdw": ("logit_churn", "log_kappa", "log_c"),
    "bgbb-dw": ("log_ret", "logit_churn", "log_kappa", "log_c"),
    "bgbb-ms": ("log_ret", "logit_churn", "log_kappa", "logit_stay"),
}
SHAPE_PARAMS = ("logit_churn", "log_kappa", "log_c", "logit_stay")  # the survival curve's shape (not the level)
REVENUE_PARAMS = ("log_level", "rho")
TENURE_FORMS = ("log", "saturating")  # the tenure term of log revenue per active user (module docstring)
TENURE_PARAMS = ("log_saturation",)  # portfolio level only: tenure="saturating"
NOISE_PARAMS = ("log_phi", "log_k", "log_tau", "log_nu", "log_whale_sd")
WHALE_PARAMS = ("logit_whale_share", "logit_whale_cell")  # by outermost group (app), non-centred
_EPS = 1e-12
# compound revenue: the exact series over purchase counts 1..96 up to 35 expected purchases per cell (the Poisson
# mass beyond 96 is 6e-18 there, 2e-7 at 55), the moment-matched gamma above 55 and a linear blend of the two log
# densities between, so the density is continuous in the purchase rate (module docstring)
_COMPOUND_TERMS = 96
_COMPOUND_BLEND = (35.0, 55.0)
# whale mixture (revenue_likelihood="whale"): whales' share of revenue, median 10%; P(whale in a cell of the
# median size), median 5%; log-scale sd of one whale amount, median 1
WHALE_PRIORS = {"logit_whale_share": (-2.2, 1.5), "logit_whale_cell": (-2.9, 1.5), "log_whale_sd": (0.0, 0.5)}


class CohortCurveData(NamedTuple):
    """Dense cohort x age arrays (``C`` cohorts, ages ``0..T-1``) with an observation mask, the group index of
    every element of every hierarchy level, and the choice of centred elements."""

    installs: np.ndarray  # (C,)
    active: np.ndarray  # (C, T); 0 where unobserved
    revenue: np.ndarray  # (C, T); 0 where unobserved
    observed: np.ndarray  # (C, T) bool
    n_observed: np.ndarray  # (C,) observed ages per cohort (0..k observed -> k + 1)
    has_active: bool
    parent: tuple  # per level l: (n_l,) int index into level l-1 (level 0: zeros); last entry: cohorts
    level_sizes: tuple  # (n_0, ..., n_{L-1}) group sizes
    level_names: tuple  # the grouping columns as site-name suffixes
    centered: tuple  # per group level (n_l,) bool; last: (len(cohort_effects), C) bool for the cohort level
    retention: str
    likelihood: str
    cohort_effects: tuple  # parameter names with a cohort level
    log_arpdau_center: float
    log_retention_center: float
    ref_age: float  # reference age of log_ret: the geometric mean observed age >= 1
    log_age_center: float  # mean log(1 + age) of the observed cells: the reference age of log_level
    revenue_likelihood: str = "lognormal"  # positive part of a cell's revenue: log-normal, gamma or whale mixture
    ref_users: float = 1.0  # median active users of the cells with revenue: the reference size of the whale rate
    precision: str = "float64"  # cell arithmetic of the fused normal x log-normal pass (float64 or float32)
    anchored: bool = True  # group elements and portfolio means sampled from their conditional (model)
    level_ages: np.ndarray | None = None  # (C,) effective age t*_c of each cohort's retention level (model); None: off
    calendar_effects: tuple = ()  # "retention" and/or "revenue": an AR(1) process over calendar periods each
    acquired: np.ndarray | None = None  # (C,) int acquisition period of each cohort (>= 0); None without calendar
    n_periods: int = 0  # calendar periods 0..n_periods-1 spanned by the observed cells
    tenure: str = "log"  # tenure term of log revenue per active user: log(1 + t) or its saturating Box-Cox form


@dataclass(frozen=True)
class CohortCurvePriors:
    """Weakly informative priors on the interpretable scales (module docstring). Locations of ``log_level`` and
    the retention level are centred on the data (mean revenue per active user, mean day-1..7 retention)."""

    churn_mean: float = 0.2  # prior median of the mean per-period churn probability m
    churn_sd: float = 2.0  # sd on the logit scale
    kappa_sd: float = 1.5  # log kappa ~ N(0, kappa_sd)
    c_sd: float = 0.5  # log c ~ N(0, c_sd)
    stay_mean: float = 0.12  # prior median of the stayers' share w (bgbb-ms)
    stay_sd: float = 2.0  # sd on the logit scale: 95% of the prior within about 0.3%..87%
    ret_sd: float = 2.0  # log_ret ~ N(log of the data's mean retention around the reference age, ret_sd)
    level_sd: float = 2.0  # log level ~ N(log mean revenue per active user, level_sd)
    rho_sd: float = 0.5
    group_sd: float = 0.5  # HalfNormal scale of every between-group and between-cohort sd
    calendar_sd: float = 0.2  # HalfNormal scale of the stationary sd of each calendar AR(1) process
    saturation_mean: float = 0.5  # prior median of the tenure term's saturation rate sigma (tenure="saturating")
    saturation_sd: float = 1.0  # sd on the log scale: 95% of the prior within about 0.07..3.5
    # (name, loc, scale) triples: a normal prior on the portfolio mean ``{name}_mu`` in place of the default one,
    # e.g. another portfolio's posterior (btyd_ltv.cohort_workflow.population_prior); checked by check_population
    population: tuple[tuple[str, float, float], ...] = ()
    kind: str = "default"


def family_params(retention: str, revenue_likelihood: str = "lognormal", tenure: str = "log") -> tuple[str, ...]:
    """The hierarchical parameters of the model with these settings (each with a portfolio mean ``{p}_mu``):
    the retention family's, ``log_level`` and ``rho``, the saturation rate and the whale terms where used."""
    whale = WHALE_PARAMS if revenue_likelihood in WHALE_LIKELIHOODS else ()
    return RETENTION_PARAMS[retention] + REVENUE_PARAMS + (TENURE_PARAMS if tenure == "saturating" else ()) + whale


def param_list(data: CohortCurveData) -> tuple[str, ...]:
    """The hierarchical parameters of a model on ``data`` (each with a portfolio mean ``{p}_mu``)."""
    return family_params(data.retention, data.revenue_likelihood, data.tenure)


def make_data(
    table: pd.DataFrame,
    *,
    cohort_col: str = "cohort",
    age_col: str = "age",
    installs_col: str = "installs",
    revenue_col: str = "revenue",
    active_col: str | None = "active_users",
    group_cols: Sequence[str] = (),
    retention: str = "bgbb",
    likelihood: str = "beta-binomial",
    revenue_likelihood: str = "lognormal",
    cohort_effects: Sequence[str] | str | None = None,
    centered_min_ages: int = 14,
    centered_min_actives: int = 2000,
    centered_min_shape_ages: int = 60,
    max_age: int | None = None,
    precision: str = "float64",
    anchored: bool = True,
    level_offsets: bool = True,
    calendar_effects: Sequence[str] = (),
    acquired: np.ndarray | Sequence[int] | None = None,
    tenure: str = "log",
) -> tuple[CohortCurveData, dict]:
    """Dense arrays from a validated long cohort table (:func:`btyd_ltv.data.cohorts.validate_cohort_table`).

    Grouping columns are nested in the order given (``("app", "campaign")``: a campaign is the (app, campaign)
    pair). ``cohort_effects``: parameters with a cohort level (``"all"``, a list, or ``None`` for the default:
    the retention level and ``log_level``). Returns the data and an index with the cohort ids and the group
    labels of every level. ``centered_min_actives``, ``centered_min_ages`` and ``centered_min_shape_ages``
    choose which cohort elements are centred (module docstring; the model is the same either way).
    ``precision="float32"`` evaluates the cells of the normal x log-normal likelihood in
    single precision with double-precision sums (:mod:`btyd_ltv.models._fused_cells`; about twice as fast).
    ``anchored=False`` samples every group element and portfolio mean relative to its parent instead of from
    its conditional given the centred elements below it (:func:`model`; the same model in other coordinates). ``level_offsets=False`` samples the centred
    cohort retention levels as themselves instead of relative to the level their group's curve shape implies at
    the cohort's effective age (:func:`model`; also the same model). ``calendar_effects`` (``"retention"``,
    ``"revenue"``) adds an AR(1) process over calendar periods to those curves (module docstring); it needs
    ``acquired``, one whole period index ``>= 0`` per row (the cohort's acquisition period; period 0 is where the
    processes start), e.g. from :func:`btyd_ltv.backtest.acquisition_period`. ``tenure``: the tenure term of
    revenue per active user, ``"log"`` or ``"saturating"`` (module docstring).
    """
    if precision not in PRECISIONS:
        raise DataValidationError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if retention not in RETENTION_FAMILIES:
        raise DataValidationError(f"retention must be one of {', '.join(RETENTION_FAMILIES)}, got {retention!r}")
    if likelihood not in LIKELIHOODS:
        raise DataValidationError(f"likelihood must be one of {', '.join(LIKELIHOODS)}, got {likelihood!r}")
    if tenure not in TENURE_FORMS:
        raise DataValidationError(f"tenure must be one of {', '.join(TENURE_FORMS)}, got {tenure!r}")
    if revenue_likelihood not in REVENUE_LIKELIHOODS:
        raise DataValidationError(f"revenue likelihood must be one of {', '.join(REVENUE_LIKELIHOODS)}, got "
                                  f"{revenue_likelihood!r}")
    names = family_params(retention)
    level_param = "log_ret" if "log_ret" in names else "logit_churn"  # the retention level
    if cohort_effects is None:
        cohort_effects = (level_param, "log_level")
    elif isinstance(cohort_effects, str):
        cohort_effects = names if cohort_effects == "all" else (cohort_effects,)
    unknown = [p for p in cohort_effects if p not in names]
    if unknown:
        raise DataValidationError(
            f"cohort_effects: {unknown[0]!r} is not a parameter of retention={retention!r} ({', '.join(names)})"
        )
    calendar_effects = check_calendar_effects(calendar_effects)
    cohort_ids = table[cohort_col].astype(str)
    cohorts = pd.Index(pd.unique(cohort_ids))
    ci = cohorts.get_indexer(cohort_ids)
    ages = table[age_col].to_numpy(np.int64)
    T = int(ages.max()) + 1 if max_age is None else int(max_age) + 1
    keep = ages < T
    C = len(cohorts)
    installs = np.zeros(C)
    installs[ci] = table[installs_col].to_numpy(np.float64)
    observed = np.zeros((C, T), dtype=bool)
    observed[ci[keep], ages[keep]] = True
    revenue = np.zeros((C, T))
    revenue[ci[keep], ages[keep]] = table[revenue_col].to_numpy(np.float64)[keep]
    has_active = active_col is not None and active_col in table.columns
    active = np.zeros((C, T))
    if has_active:
        active[ci[keep], ages[keep]] = table[active_col].to_numpy(np.float64)[keep]
    n_observed = observed.sum(axis=1)

    # hierarchy: level l elements are distinct tuples of the first l + 1 grouping columns
    first = table.groupby(cohort_ids, sort=False).first().loc[cohorts]
    parent, sizes, labels = [], [], {}
    prev_codes = np.zeros(C, dtype=np.int64)
    kept_cols = []
    for col in group_cols:
        key = first[list(group_cols[: group_cols.index(col) + 1])].astype(str).agg("/".join, axis=1).to_numpy()
        codes, uniq = pd.factorize(key)
        if len(uniq) == (sizes[-1] if sizes else 1) and (sizes or len(uniq) == 1):
            continue  # one element per parent element: the level adds nothing (its sd is not identified)
        kept_cols.append(col)
        par = np.zeros(len(uniq), dtype=np.int32)
        par[codes] = prev_codes
        parent.append(par)
        sizes.append(len(uniq))
        labels[col] = [str(u) for u in uniq]
        prev_codes = codes
    parent.append(prev_codes.astype(np.int32))
    # Centring (module docstring). Group elements pool many cohorts: centred. A cohort's retention level is
    # centred when its active users pin it (>= centered_min_actives active-user observations at ages >= 1, a
    # binomial standard error of log retention <= ~0.02, well below typical between-cohort sds); its revenue level when it has >= centered_min_ages
    # cells with revenue (day-level revenue noise of ~0.3 on the log scale averages down to the size of a
    # typical between-cohort sd). Weakly informed elements are non-centred.
    later = observed & (np.arange(T)[None, :] >= 1)
    n_actives = (active * later).sum(axis=1) if has_active else np.zeros(C)
    n_revenue = (observed & (revenue > 0)).sum(axis=1)
    # A curve's shape (churn when the level is log_ret, polarisation, Weibull c) and its revenue tenure slope rho
    # need a long history on top: a 16-day cohort of 100k installs pins its level, not its day-365 shape, and a
    # centred shape with a small between-cohort sd is the funnel (R-hat 1.5 on rho_sd_cohort in the calibration
    # fit before this rule).

    def _cohort_rule(p: str) -> np.ndarray:
        pinned = (n_actives >= centered_min_actives if has_active and p not in ("log_level", "rho")
                  else n_revenue >= centered_min_ages)
        return pinned if p in ("log_level", level_param) else pinned & (n_observed >= centered_min_shape_ages)

    cohort_centered = np.array([_cohort_rule(p) for p in cohort_effects], dtype=bool).reshape(len(cohort_effects), C)
    centered = [np.ones(n, dtype=bool) for n in sizes] + [cohort_centered]

    with np.errstate(divide="ignore", invalid="ignore"):
        denom = active if has_active else installs[:, None] * np.ones((1, T))
        pos = observed & (denom > 0)
        arpdau = revenue[pos].sum() / denom[pos].sum() if pos.any() else 1.0  # ~ ARPDAU at the mean age
    ages_grid = np.arange(T)[None, :]
    ref_age = float(max(1, round(np.exp(np.log(np.nonzero(observed & (ages_grid >= 1))[1]).mean())))) if (
        observed[:, 1:].any()) else 1.0
    near = observed & (ages_grid >= max(1, ref_age / 2)) & (ages_grid <= 2 * ref_age)
    share = active[near].sum() / (installs[:, None] * near)[near].sum() if has_active and near.any() else 0.3
    share = float(np.clip(share, 1e-6, 1 - 1e-6))
    users = active if has_active else installs[:, None] * np.where(ages_grid == 0, 1.0, share)
    level_ages = None
    if level_offsets and level_param == "log_ret" and "log_ret" in cohort_effects and not any(
            p in cohort_effects for p in SHAPE_PARAMS):
        level_ages = _effective_ages(observed, active if has_active else None, installs, ref_age)
    paying = observed & (revenue > 0) & (users > 0)
    ref_users = float(np.median(users[paying])) if paying.any() else 1.0
    data = CohortCurveData(
        installs=installs, active=active, revenue=revenue, observed=observed, n_observed=n_observed,
        has_active=bool(has_active), parent=tuple(parent), level_sizes=tuple(sizes),
        level_names=tuple(level_suffix(c) for c in kept_cols),
        centered=tuple(centered), retention=retention, likelihood=likelihood,
        cohort_effects=tuple(cohort_effects), log_arpdau_center=float(np.log(max(arpdau, 1e-300))),
        log_retention_center=float(np.log(share)), ref_age=ref_age,
        log_age_center=float(np.log1p(np.nonzero(observed)[1]).mean()), revenue_likelihood=revenue_likelihood,
        ref_users=ref_users, precision=precision, anchored=bool(anchored), level_ages=level_ages, tenure=tenure,
    )
    if calendar_effects:
        acq, n_periods = _acquisition(acquired, ci, C, cohorts, observed)
        data = data._replace(calendar_effects=calendar_effects, acquired=acq, n_periods=n_periods)
    index = {"cohorts": list(cohorts), "groups": labels, "group_cols": list(kept_cols), "max_age": T - 1}
    return data, index


def check_calendar_effects(effects: Sequence[str] | str) -> tuple[str, ...]:
    """``effects`` as a tuple of names from :data:`CALENDAR_EFFECTS`; a clear error for any other name."""
    effects = (effects,) if isinstance(effects, str) else tuple(effects)
    bad = [e for e in effects if e not in CALENDAR_EFFECTS]
    if bad:
        raise DataValidationError(f"calendar_effects: {bad[0]!r} is not one of {', '.join(CALENDAR_EFFECTS)}")
    return effects


def _acquisition(acquired, ci: np.ndarray, C: int, cohorts: pd.Index, observed: np.ndarray) -> tuple[np.ndarray, int]:
    """Per-cohort acquisition periods from one value per row, checked, and the calendar periods the observed cells
    span."""
    if acquired is None:
        raise DataValidationError("calendar effects need each cohort's acquisition period: pass acquired=<one whole "
                                  "period index per row> (e.g. from btyd_ltv.backtest.acquisition_period)")
    a = np.asarray(acquired)
    if a.shape != ci.shape:
        raise DataValidationError(f"acquired has {a.size} entries but the cohort table has {ci.size} rows")
    if not np.issubdtype(a.dtype, np.integer):
        raise DataValidationError(f"acquired must hold whole period indices, got dtype {a.dtype}")
    if (a < 0).any():
        pos = int(np.argmax(a < 0))
        raise DataValidationError(f"acquired: period {int(a[pos])} at row {pos} (cohort {cohorts[ci[pos]]!r}) is "
                                  "negative; count periods from the first acquisition period (0)")
    acq = np.zeros(C, dtype=np.int64)
    acq[ci] = a
    if (acq[ci] != a).any():
        pos = int(np.argmax(acq[ci] != a))
        raise DataValidationError(f"acquired: cohort {cohorts[ci[pos]]!r} has more than one acquisition period "
                                  f"(row {pos})")
    last = np.where(observed.any(axis=1), observed.shape[1] - 1 - np.argmax(observed[:, ::-1], axis=1), 0)
    n_periods = int((acq + last).max()) + 1
    if n_periods < 2:
        raise DataValidationError("calendar effects need cells in at least two calendar periods; the table has one")
    return acq, n_periods


def _effective_ages(observed: np.ndarray, active: np.ndarray | None, installs: np.ndarray,
                    ref_age: float) -> np.ndarray:
    """Every cohort's effective age ``t*_c = exp(sum_t w_ct log t)`` over its observed ages ``t >= 1``, with the
    weights ``w_ct`` proportional to the information an age carries about the cohort's log retention level:
    ``s / (1 - s)`` for overdispersed active-user counts (``s`` the observed share active), equal weights when
    active users are not given. ``ref_age`` for a cohort with no observed age ``>= 1``."""
    T = observed.shape[1]
    later = observed & (np.arange(T)[None, :] >= 1)
    if active is not None:
        s = np.clip(active / np.maximum(installs, 1.0)[:, None], 1e-6, 1 - 1e-6)
        w = np.where(later, s / (1 - s), 0.0)
    else:
        w = later.astype(np.float64)
    total = w.sum(axis=1)
    log_t = np.log(np.maximum(np.arange(T), 1))[None, :]
    mean_log = np.where(total > 0, (w * log_t).sum(axis=1) / np.where(total > 0, total, 1.0), np.log(ref_age))
    return np.exp(mean_log)


def _log_survival(params: dict, x) -> jnp.ndarray:
    """BdW survival ``log S(x) = log B(a, b + x^c) - log B(a, b)``
    ``= lgamma(b + x^c) - lgamma(a + b + x^c) + lgamma(a + b) - lgamma(b)``; with stayers (``logit_stay``)
    ``log(w + (1 - w) S(x))``."""
    m = jax.nn.sigmoid(params["logit_churn"])
    kappa = jnp.exp(params["log_kappa"])
    a, b = m * kappa, (1.0 - m) * kappa
    xc = x ** jnp.exp(params["log_c"]) if "log_c" in params else x
    return _with_stayers(params, gammaln(b + xc) - gammaln(a + b + xc) + gammaln(a + b) - gammaln(b))


def _with_stayers(params: dict, log_S):
    """``log(w + (1 - w) S)`` from ``log S`` when the family has stayers (``w = sigmoid(logit_stay)``), else
    ``log S``."""
    if "logit_stay" not in params:
        return log_S
    w = params["logit_stay"]
    return jnp.logaddexp(jax.nn.log_sigmoid(w), jax.nn.log_sigmoid(-w) + log_S)


def log_retention(retention: str, params: dict, t, ref_age: float = 1.0) -> jnp.ndarray:
    """``log s(t)`` for ``t >= 1`` (0 at ``t = 0``), broadcasting the parameter arrays against the ages ``t``.

    Without activity (``"bdw"``) ``s(t) = S(t)``. With activity, ``s(t) = pi S(t)`` is parameterised by the
    retention at the reference age, ``log_ret = log s(ref_age)``, so ``pi = exp(log_ret) / S(ref_age)``:
    a cohort's level is then pinned by its data whatever the (campaign-level) shape, which removes the
    posterior correlation between every cohort's ``pi`` and its campaign's churn and polarisation.
    """
    t = jnp.asarray(t, dtype=jnp.float64)
    log_s = _log_survival(params, t)
    if "log_ret" in params:
        log_s = log_s + params["log_ret"] - _log_survival(params, jnp.asarray(ref_age, dtype=jnp.float64))
    return jnp.where(t > 0, log_s, 0.0)


def log_pi(params: dict, ref_age: float) -> jnp.ndarray:
    """``log pi = log_ret - log S(ref_age)``: the activity probability of alive users."""
    return params["log_ret"] - _log_survival(params, jnp.asarray(ref_age, dtype=jnp.float64))


def _log_retention_grid(retention: str, params: dict, T: int, ref_age: float) -> jnp.ndarray:
    """:func:`log_retention` on the ages ``0..T-1`` for cohort parameters ``(C,)``, ``(C, T)``. Without the
    Weibull ``c`` the sBG ratio ``S(t) / S(t - 1) = (b + t - 1) / (a + b + t - 1)`` (Fader & Hardie 2007,
    eq. 5) turns the log-gamma calls into a cumulative sum of logs."""
    if "log_c" in params:
        return log_retention(retention, {k: v[:, None] for k, v in params.items()}, jnp.arange(T), ref_age)
    m = jax.nn.sigmoid(params["logit_churn"])[:, None]
    kappa = jnp.exp(params["log_kappa"])[:, None]
    i = jnp.arange(T - 1, dtype=jnp.float64)[None, :]
    step = jnp.log((1.0 - m) * kappa + i) - jnp.log(kappa + i)
    log_s = jnp.concatenate([jnp.zeros_like(m), jnp.cumsum(step, axis=1)], axis=1)
    log_s = _with_stayers({k: v[:, None] for k, v in params.items() if k == "logit_stay"}, log_s)
    if "log_ret" in params:
        log_s = log_s + log_pi(params, ref_age)[:, None]
    return log_s.at[:, 0].set(0.0)


def log_arpdau(params: dict, t, center: float = 0.0) -> jnp.ndarray:
    """``log arpdau(t) = level + rho (h(log(1 + t)) - h(center))``: ``level`` is the log ARPDAU at age
    ``exp(center) - 1``; the data's mean ``log(1 + age)`` as ``center`` keeps ``level`` and ``rho`` nearly
    uncorrelated in the posterior. ``h(u) = u``, or with ``log_saturation`` in ``params`` the saturating Box-Cox
    form ``h(u) = (1 - exp(-sigma u)) / sigma``, ``sigma = exp(log_saturation)`` (module docstring)."""
    u = jnp.log1p(jnp.asarray(t, dtype=jnp.float64))
    if "log_saturation" not in params:
        return params["log_level"] + params["rho"] * (u - center)
    sigma = jnp.exp(params["log_saturation"])
    return params["log_level"] + params["rho"] * (jnp.expm1(-sigma * center) - jnp.expm1(-sigma * u)) / sigma


def _revenue_view(params: dict) -> dict:
    """The parameters of :func:`log_arpdau` from per-cohort ``(C,)`` arrays, as ``(C, 1)`` columns."""
    return {k: params[k][:, None] for k in REVENUE_PARAMS + TENURE_PARAMS if k in params}


def _prior_loc_scale(name: str, data: CohortCurveData, pr: CohortCurvePriors) -> tuple[float, float]:
    for p, loc, scale in pr.population:
        if p == name:
            return float(loc), float(scale)
    logit = lambda p: float(np.log(p / (1 - p)))  # noqa: E731
    return {
        "logit_churn": (logit(pr.churn_mean), pr.churn_sd),
        "log_kappa": (0.0, pr.kappa_sd),
        "log_c": (0.0, pr.c_sd),
        "logit_stay": (logit(pr.stay_mean), pr.stay_sd),
        "log_ret": (data.log_retention_center, pr.ret_sd),
        "log_level": (data.log_arpdau_center, pr.level_sd),
        "rho": (0.0, pr.rho_sd),
        "log_saturation": (float(np.log(pr.saturation_mean)), pr.saturation_sd),
        **WHALE_PRIORS,
    }[name]


def level_suffix(column) -> str:
    """The site-name suffix of the hierarchy level of grouping column ``column`` (``{p}_sd_{suffix}``)."""
    return re.sub(r"\W", "_", str(column))


def check_population(population: Sequence[tuple[str, float, float]],
                     data: CohortCurveData) -> tuple[tuple[str, float, float], ...]:
    """A population prior (``CohortCurvePriors.population``) as ``(name, loc, scale)`` triples of str and floats;
    refused when it names a parameter the model on ``data`` does not have or names one twice, or when a location
    is not finite or a scale is not positive."""
    names = param_list(data)
    seen, out = set(), []
    for entry in population:
        try:
            p, loc, scale = entry[0], float(entry[1]), float(entry[2])
            if len(entry) != 3:
                raise ValueError
        except (TypeError, ValueError, IndexError):
            raise DataValidationError(f"a population prior entry must be (name, loc, scale), got {entry!r}") from None
        if p not in names:
            raise DataValidationError(
                f"population prior: {p!r} is not a parameter of this model ({data.retention} retention, "
                f"{data.revenue_likelihood} revenue, {data.tenure} tenure term: {', '.join(names)})"
            )
        if p in seen:
            raise DataValidationError(f"population prior: {p!r} is given twice")
        seen.add(p)
        if not np.isfinite(loc) or not np.isfinite(scale) or scale <= 0:
            raise DataValidationError(
                f"population prior of {p!r}: the location must be finite and the scale positive, got loc={loc!r}, "
                f"scale={scale!r}"
            )
        out.append((str(p), loc, scale))
    return tuple(out)


def _levels(data: CohortCurveData, name: str) -> list[tuple[str, int]]:
    """(suffix, level index) of the hierarchy levels parameter ``name`` has; the cohort level is ``"cohort"``."""
    out = [(suffix, lvl) for lvl, suffix in enumerate(data.level_names)]
    if name in TENURE_PARAMS:
        return []
    if name in WHALE_PARAMS:
        return out[:1]
    if name in data.cohort_effects:
        out.append(("cohort", len(data.level_sizes)))
    return out


def param_names(data: CohortCurveData) -> list[str]:
    """Hyper-parameters checked in diagnostics: population means, between-group sds and noise parameters."""
    names = []
    for p in param_list(data):
        names.append(f"{p}_mu")
        names += [f"{p}_sd_{suffix}" for suffix, _ in _levels(data, p)]
    return names + noise_names(data) + [f"cal_{e}_{p}" for e in data.calendar_effects for p in ("sd", "ar")]


def noise_names(data: CohortCurveData) -> list[str]:
    """The noise parameters of a model on ``data``: ``log_phi`` with active users, the whale terms with
    a whale mixture (``revenue_likelihood`` in :data:`WHALE_LIKELIHOODS`)."""
    return [n for n in NOISE_PARAMS if (n != "log_phi" or data.has_active)
            and (n != "log_whale_sd" or data.revenue_likelihood in WHALE_LIKELIHOODS)]


def _centered(data: CohortCurveData, name: str, lvl: int) -> np.ndarray:
    """Which elements of parameter ``name`` at hierarchy level ``lvl`` are centred."""
    if name in WHALE_PARAMS:  # few groups (apps), weakly informed by rare whale cells: non-centred
        return np.zeros(data.level_sizes[lvl], dtype=bool)
    if lvl < len(data.level_sizes):
        return data.centered[lvl]
    return data.centered[-1][data.cohort_effects.index(name)]


def _mixed_level(name: str, loc, sd, centered: np.ndarray, offset=0.0):
    """Normal(loc, sd) elements, centred where ``centered`` and non-centred (``loc + sd z``) elsewhere.

    A centred element is sampled as ``raw = value - offset`` (``offset`` a function of other sites only, so the
    Jacobian is 1 and the model is unchanged): :func:`model` passes ``offset = -log sigmoid(logit_churn)`` for
    ``log_kappa``, so the sampler moves along ``log a = log m + log kappa``, which long curves pin down, instead
    of ``log kappa``, whose posterior correlation with ``logit_churn`` is about -0.99 (module docstring)."""
    n = centered.shape[0]
    raw = numpyro.sample(f"{name}_raw", dist.ImproperUniform(dist.constraints.real, (), (n,)))
    c = jnp.asarray(centered)
    value = jnp.where(c, raw + offset, loc + sd * raw)
    lp = jnp.where(c, dist.Normal(loc, sd).log_prob(value), dist.Normal(0.0, 1.0).log_prob(raw))
    numpyro.factor(f"{name}_prior", jnp.sum(lp))
    return value


def _ancestor(data: CohortCurveData, lvl: int, up: int) -> np.ndarray:
    """Index, into hierarchy level ``up``, of every element's ancestor at level ``lvl >= up``."""
    idx = np.arange(len(data.parent[lvl]))
    for level in range(lvl, up, -1):
        idx = np.asarray(data.parent[level])[idx]
    return idx


def _as_log_a(data: CohortCurveData, name: str, lvl: int) -> bool:
    """Whether the centred elements of ``name`` at level ``lvl`` are sampled as ``log a`` (see :func:`model`): the
    finest level of ``log_kappa``."""
    return name == "log_kappa" and lvl == _levels(data, name)[-1][1]


def _raw_offset(values: dict, data: CohortCurveData, name: str, lvl: int):
    """``offset`` of the centred elements of ``name`` at level ``lvl`` (:func:`_mixed_level`): a function of
    sites sampled before them only, so the Jacobian is 1.

    * ``log_kappa`` at its finest level: ``-log m``, so the sampler moves along ``log a`` (:func:`_as_log_a`).
    * ``log_ret`` at the cohort level (``data.level_ages`` set): ``-(log S(t*_c) - log S(ref_age))`` with the
      survival ``S`` of the cohort's group shape at its effective age ``t*_c`` (:func:`_effective_ages`). The
      cohort's data pin ``log s`` near ``t*_c``, i.e. ``log_ret + log S(t*_c) - log S(ref_age)``: sampled as that
      sum, the level no longer moves with every change of its group's curve shape. On 200 simulated cohorts x 365
      ages this halved NUTS's leapfrog steps per draw (``benchmarks/curve_geometry.py``, README)."""
    if _as_log_a(data, name, lvl):
        return -jax.nn.log_sigmoid(_level_value(values, data, "logit_churn", lvl))
    if name == "log_ret" and data.level_ages is not None and lvl == len(data.level_sizes):
        shape = {p: _level_value(values, data, p, lvl) for p in SHAPE_PARAMS if p in param_list(data)}
        # log S(t*) - log S(ref_age) is log_retention with a zero level (t* >= 1)
        return -log_retention(data.retention, {**shape, "log_ret": 0.0}, data.level_ages, data.ref_age)
    return 0.0


def _level_value(values: dict, data: CohortCurveData, name: str, lvl: int):
    """Parameter ``name`` at the elements of hierarchy level ``lvl``: its own value there, or that of the nearest
    level above that it has (the portfolio mean if none)."""
    levels = [(s, l) for s, l in _levels(data, name) if l <= lvl]
    if not levels:
        return jnp.broadcast_to(values[f"{name}_mu"], (len(data.parent[lvl]),))
    suffix, up = levels[-1]
    return jnp.take(values[f"{name}_{suffix}"], _ancestor(data, lvl, up))


def _cohort_group(data: CohortCurveData, lvl: int) -> np.ndarray:
    """Index of every cohort's group at hierarchy level ``lvl``, composing the parent maps."""
    return _ancestor(data, len(data.level_sizes), lvl)


def cohort_params(values: dict, data: CohortCurveData) -> dict:
    """Per-cohort parameters ``(..., C)`` from the per-level values of a posterior (``{p}_mu`` and the
    deterministic ``{p}_{level}`` sites), broadcasting over leading draw axes."""
    out = {}
    n_levels = len(data.level_sizes)
    C = data.installs.shape[0]
    for p in param_list(data):
        levels = _levels(data, p)
        if not levels:
            out[p] = jnp.broadcast_to(jnp.asarray(values[f"{p}_mu"])[..., None], jnp.shape(values[f"{p}_mu"]) + (C,))
            continue
        suffix, lvl = levels[-1]
        v = jnp.asarray(values[f"{p}_{suffix}"])
        out[p] = v if lvl == n_levels else jnp.take(v, _cohort_group(data, lvl), axis=-1)
    return out


def log_likelihood(params: dict, noise: dict, data: CohortCurveData, calendar: dict | None = None) -> jnp.ndarray:
    """Log-likelihood of every cohort x age cell, ``(C, T)`` (0 where unobserved), given per-cohort parameters
    ``params`` (arrays ``(C,)``), the noise parameters and, with calendar effects, the ``(C, T)`` log offsets of
    :func:`calendar_offsets` (module docstring). Pure JAX."""
    C, T = data.observed.shape
    t = jnp.arange(T)
    log_s = _log_retention_grid(data.retention, params, T, data.ref_age)
    log_a = log_arpdau(_revenue_view(params), t[None, :], data.log_age_center)
    log_s, log_a = _with_calendar(log_s, log_a, calendar)
    observed = jnp.asarray(data.observed)
    installs = jnp.asarray(data.installs)[:, None]
    if data.has_active:
        active = jnp.asarray(data.active)
        use = observed & (t[None, :] > 0)
        ll = jnp.where(use, _active_log_prob(active, installs, log_s, noise["log_phi"], data.likelihood), 0.0)
        users, log_users = active, jnp.log(jnp.maximum(active, _EPS))
    else:
        ll = 0.0
        users = installs * jnp.exp(log_s)
        log_users = jnp.log(installs) + log_s
    rev = _revenue_log_prob(jnp.asarray(data.revenue), users, log_users, log_a, noise["log_k"], noise["log_nu"],
                            noise["log_tau"], data.revenue_likelihood,
                            _whale({k: params[k][:, None] for k in WHALE_PARAMS if k in params}, noise, data))
    return ll + jnp.where(observed, rev, 0.0)


def total_log_likelihood(params: dict, noise: dict, data: CohortCurveData, calendar: dict | None = None
                         ) -> jnp.ndarray:
    """The sum of :func:`log_likelihood` over cells. With observed active users, the normal likelihood and
    log-normal revenue (and no calendar effects) its value and gradient come from one fused pass
    (:mod:`btyd_ltv.models._fused_cells`, in ``data.precision``); otherwise it is the autodiff sum of the cell
    array."""
    if not _fused_cells.applies(data):
        return jnp.sum(log_likelihood(params, noise, data, calendar))
    C, T = data.observed.shape
    if not {"log_c", "logit_stay", "log_saturation"} & set(params):  # sBG, log tenure: grid built inside the pass
        kappa = jnp.exp(params["log_kappa"])
        a = jax.nn.sigmoid(params["logit_churn"]) * kappa
        shift = log_pi(params, data.ref_age) if "log_ret" in params else jnp.zeros_like(a)
        return _fused_cells.sbg_log_likelihood(a, kappa, shift, params["log_level"], params["rho"], noise, data,
                                               data.log_age_center, data.precision)
    log_s = _log_retention_grid(data.retention, params, T, data.ref_age)
    log_a = log_arpdau(_revenue_view(params), jnp.arange(T)[None, :], data.log_age_center)
    return _fused_cells.cell_log_likelihood(log_s, log_a, noise, data, data.precision)


def _with_calendar(log_s, log_a, calendar: dict | None):
    """Add the calendar offsets (:func:`calendar_offsets`) to log retention (capped at ``s = 1``) and log ARPDAU."""
    if not calendar:
        return log_s, log_a
    if "retention" in calendar:
        log_s = jnp.minimum(log_s + calendar["retention"], 0.0)
    if "revenue" in calendar:
        log_a = log_a + calendar["revenue"]
    return log_s, log_a


def calendar_offsets(processes: dict, data: CohortCurveData, n_ages: int) -> dict:
    """Log offsets ``(..., C, n_ages)`` of each cohort's retention and ARPDAU at ages ``0..n_ages-1`` from the
    calendar processes ``processes[effect]`` ``(..., P)`` (module docstring): the process at period ``a_c + t``,
    and 0 for retention at ``t = 0``. Periods past ``P - 1`` take the last value (the likelihood's unobserved cells);
    :func:`predictive_ltv` extends the processes to cover every forecast period first."""
    t = np.arange(n_ages)
    out = {}
    for effect, x in processes.items():
        x = jnp.asarray(x)
        idx = np.minimum(np.asarray(data.acquired)[:, None] + t[None, :], x.shape[-1] - 1)
        off = jnp.take(x, idx, axis=-1)
        out[effect] = jnp.where(t > 0, off, 0.0) if effect == "retention" else off
    return out


def _ar1(start, phi, innovations):
    """``x_p = phi x_{p-1} + e_p`` from ``x_{-1} = start`` along the last axis of ``innovations``."""
    def step(x, e):
        x = phi * x + e
        return x, x

    _, xs = jax.lax.scan(step, start, jnp.moveaxis(innovations, -1, 0))
    return jnp.moveaxis(xs, 0, -1)


def _calendar_processes(data: CohortCurveData, pr: CohortCurvePriors) -> dict:
    """The non-centred calendar AR(1) processes (module docstring): ``cal_{effect}_sd``, ``cal_{effect}_ar``,
    ``cal_{effect}_z`` and the deterministic process ``cal_{effect}`` over periods ``0..n_periods-1``, started
    from its stationary distribution. Returns each process less its mean over those periods (the offsets)."""
    processes = {}
    for effect in data.calendar_effects:
        sd = numpyro.sample(f"cal_{effect}_sd", dist.HalfNormal(pr.calendar_sd))
        phi = numpyro.sample(f"cal_{effect}_ar", dist.Uniform(0.0, 1.0))
        z = numpyro.sample(f"cal_{effect}_z", dist.Normal(0.0, 1.0).expand((data.n_periods,)).to_event(1))
        e = sd * z.at[1:].multiply(jnp.sqrt(1.0 - phi ** 2))
        x = numpyro.deterministic(f"cal_{effect}", _ar1(0.0, phi, e))
        processes[effect] = _less_fitted_mean(x, data.n_periods)
    return processes


def _less_fitted_mean(x, n_fitted: int):
    """The calendar offsets: the process ``x`` (periods on the last axis) less its mean over the fitted periods
    ``0..n_fitted-1`` (module docstring), for the likelihood and for the forecast alike."""
    return x - jnp.mean(x[..., :n_fitted], axis=-1, keepdims=True)


def _active_log_prob(active, installs, log_s, log_phi, likelihood: str):
    """Beta-binomial ``(N, s phi, (1 - s) phi)`` log pmf of the active users, or the normal log density with
    the same mean ``N s`` and variance ``N s (1 - s) (1 + (N - 1) / (phi + 1))``."""
    s = jnp.clip(jnp.exp(log_s), _EPS, 1.0 - _EPS)
    phi = jnp.exp(log_phi)
    if likelihood == "beta-binomial":
        return dist.BetaBinomial(s * phi, (1.0 - s) * phi, total_count=installs).log_prob(active)
    log_var = jnp.log(installs) + log_s + jnp.log1p(-s) + jnp.log1p((installs - 1.0) / (phi + 1.0))
    return -0.5 * ((active - installs * s) ** 2 * jnp.exp(-log_var) + log_var + jnp.log(2.0 * jnp.pi))


def _revenue_params(users, log_users, log_a, log_k, log_nu, log_tau):
    """``log P(revenue = 0)``, ``log P(revenue > 0)``, the log mean of a cell's positive revenue and its squared
    coefficient of variation ``1 / (k A) + tau^2``, given ``users`` active users (module docstring)."""
    u = jnp.maximum(users, _EPS)
    log_p0 = -jnp.exp(log_nu) * u
    log1m_p0 = jnp.log(-jnp.expm1(log_p0))
    cv2 = jnp.exp(-log_k) / u + jnp.exp(2.0 * log_tau)
    log_mean = log_users + log_a - log1m_p0
    return log_p0, log1m_p0, log_mean, cv2


def _whale(params: dict, noise: dict, data: CohortCurveData) -> tuple | None:
    """``(logit s, logit omega_ref, log sigma_w, A_ref)`` of the whale mixture (per-cohort arrays ``params``
    already broadcast against the cells), ``None`` for the other kinds."""
    if data.revenue_likelihood not in WHALE_LIKELIHOODS:
        return None
    return (params["logit_whale_share"], params["logit_whale_cell"], noise["log_whale_sd"], data.ref_users)


def _whale_components(users, log_mean, cv2, whale):
    """The two log-normal components of a positive cell's revenue under the whale mixture (module docstring):
    ``log P(whale | revenue > 0)``, ``log P(no whale | revenue > 0)``, and the log mean and squared CV of the
    cells without and with whale purchases.

    Whale purchases arrive at ``lambda = softplus(logit omega_ref) / A_ref`` per active user (so
    ``omega_ref = P(a cell of A_ref users has a whale)``), ``mu = lambda A`` per cell; given at least one, their
    count ``N`` has mean ``n = mu / omega`` and variance ``n (1 + mu - n)`` (zero-truncated Poisson), each amount
    has squared CV ``cv_w^2 = exp(sigma_w^2) - 1``, and together they carry the share ``s`` of expected revenue::

        M0 = (1 - s) A arpdau / P(revenue > 0),      W = s A arpdau / (P(revenue > 0) omega),    M1 = M0 + W
        CV1^2 = (M0^2 CV^2 + W^2 (cv_w^2 + 1 + mu - n) / n) / M1^2

    so ``E[revenue] = P(revenue > 0) ((1 - omega) M0 + omega M1) = A arpdau`` exactly.
    """
    logit_s, logit_w, log_sd, ref_users = whale
    rate = jax.nn.softplus(logit_w) / ref_users
    mu = rate * jnp.maximum(users, _EPS)
    log_omega = jnp.log(-jnp.expm1(-mu))
    log1m_omega = -mu
    log_m0 = log_mean + jax.nn.log_sigmoid(-logit_s)
    log_w = log_mean + jax.nn.log_sigmoid(logit_s) - log_omega
    log_m1 = jnp.logaddexp(log_m0, log_w)
    n = jnp.exp(jnp.log(mu) - log_omega)
    cw2 = (jnp.expm1(jnp.exp(2.0 * log_sd)) + 1.0 + mu - n) / n
    cv1 = jnp.exp(2.0 * (log_m0 - log_m1)) * cv2 + jnp.exp(2.0 * (log_w - log_m1)) * cw2
    return log_omega, log1m_omega, log_m0, log_m1, cv1


def _log_lognormal(log_y, log_mean, cv2):
    """Log density at ``y = exp(log_y)`` of the log-normal with mean ``exp(log_mean)`` and squared CV ``cv2``."""
    scale2 = jnp.log1p(cv2)
    loc = log_mean - 0.5 * scale2
    return -log_y - 0.5 * (jnp.log(2.0 * jnp.pi * scale2) + (log_y - loc) ** 2 / scale2)


def _log_gamma(log_y, log_mean, cv2):
    """Log density at ``y = exp(log_y)`` of the gamma with mean ``exp(log_mean)`` and squared CV ``cv2``
    (shape ``1 / cv2``)."""
    shape = 1.0 / cv2
    return (shape * (jnp.log(shape) - log_mean) + (shape - 1.0) * log_y - shape * jnp.exp(log_y - log_mean)
            - gammaln(shape))


def _compound_cv2(m, log_k, log_tau):
    """Squared CV of a positive cell's regular revenue under the compound law (module docstring): a
    zero-truncated Poisson(``m``) number ``N`` of ``Gamma(k)`` purchases, mean ``nbar = m / (1 - exp(-m))`` and
    variance ``nbar (1 + m - nbar)``, so ``CV^2 = 1 / (nbar k) + (1 + m - nbar) / nbar``, times day-level noise
    ``(1 + CV^2)(1 + tau^2) - 1``."""
    nbar = m / -jnp.expm1(-m)
    cv2 = jnp.exp(-log_k) / nbar + (1.0 + m - nbar) / nbar
    return (1.0 + cv2) * (1.0 + jnp.exp(2.0 * log_tau)) - 1.0


def _log_compound(log_y, log_mean, m, log_k, log_tau):
    """Log density at ``y = exp(log_y) > 0`` of a positive cell's regular revenue with mean ``exp(log_mean)``
    under the compound law (module docstring): ``sum_n P(N = n | N >= 1) Gamma(y; mean_n, CV_n^2)`` over
    ``n = 1..96`` where ``m <= 35``, the gamma with the sum's mean and :func:`_compound_cv2` above ``m = 55``,
    the log densities blended linearly between."""
    lo, hi = _COMPOUND_BLEND
    weight = jnp.clip((m - lo) / (hi - lo), 0.0, 1.0)  # of the gamma
    ms = jnp.minimum(m, hi)  # the series where it is used
    log1m_p0 = jnp.log(-jnp.expm1(-ms))
    log_purchase = log_mean + log1m_p0 - jnp.log(ms)  # mean purchase mu: E[sum | N = n] = n mu
    # term n, Poisson(n; m) Gamma(y; shape a_n, mean n mu), is linear in per-cell log m, log y, log mu and y / mu:
    # n log m + (a_n - 1) log y - a_n log mu - (a_n / n) y / mu + c_n, less m + log P(N >= 1) for every n
    n = jnp.arange(1, _COMPOUND_TERMS + 1, dtype=jnp.result_type(log_y, float))
    a = 1.0 / ((1.0 + jnp.exp(-log_k) / n) * (1.0 + jnp.exp(2.0 * log_tau)) - 1.0)
    c = a * (jnp.log(a) - jnp.log(n)) - gammaln(a) - gammaln(n + 1.0)
    x = jnp.stack([jnp.log(ms), log_y, log_purchase, jnp.exp(log_y - log_purchase)], axis=-1)
    terms = x @ jnp.stack([n, a - 1.0, -a, -a / n]) + c
    exact = logsumexp(terms, axis=-1) - ms - log1m_p0
    approx = _log_gamma(log_y, log_mean, _compound_cv2(m, log_k, log_tau))
    return jnp.where(weight >= 1.0, approx, (1.0 - weight) * exact + weight * approx)


def _revenue_log_prob(revenue, users, log_users, log_a, log_k, log_nu, log_tau, kind: str = "lognormal",
                      whale: tuple | None = None):
    """Log density of the cells' revenue: zero with probability ``P0 = exp(-nu A)``, else log-normal
    (:func:`btyd_ltv.distributions.ziln_log_prob` written out, ``scale^2 = log(1 + CV^2)``) or gamma (shape
    ``1 / CV^2``) with mean ``A arpdau / (1 - P0)``. A cell with no active users has no revenue with
    probability one.

    The gamma form's score for the mean is that of a gamma GLM (McCullagh & Nelder 1989, ch. 8): its estimate of
    the mean is consistent whatever the true distribution of the positive amounts, so rare whale purchases are
    averaged into ARPDAU; the log-normal's location follows the typical cell and misses them.

    ``"compound"`` is the compound Poisson-gamma sum of the purchases (:func:`_log_compound`). The whale mixtures
    (:func:`_whale_components`) put the cells with a whale purchase in a log-normal component and the others in
    the log-normal (``"whale"``) or compound (``"whale-compound"``) one.
    """
    log_p0, log1m_p0, log_mean, cv2 = _revenue_params(users, log_users, log_a, log_k, log_nu, log_tau)
    pos = revenue > 0
    log_y = jnp.log(jnp.where(pos, revenue, 1.0))
    if kind in COMPOUND_LIKELIHOODS:
        m = jnp.exp(log_nu) * jnp.maximum(users, _EPS)
        cv2 = _compound_cv2(m, log_k, log_tau)
    if kind == "gamma":
        positive = _log_gamma(log_y, log_mean, cv2)
    elif kind == "compound":
        positive = _log_compound(log_y, log_mean, m, log_k, log_tau)
    elif kind in WHALE_LIKELIHOODS:
        log_omega, log1m_omega, log_m0, log_m1, cv1 = _whale_components(users, log_mean, cv2, whale)
        base = (_log_compound(log_y, log_m0, m, log_k, log_tau) if kind == "whale-compound"
                else _log_lognormal(log_y, log_m0, cv2))
        positive = jnp.logaddexp(log1m_omega + base, log_omega + _log_lognormal(log_y, log_m1, cv1))
    else:
        positive = _log_lognormal(log_y, log_mean, cv2)
    lp = jnp.where(pos, log1m_p0 + positive, log_p0)
    return jnp.where(users > 0, lp, jnp.where(pos, -jnp.inf, 0.0))


def is_anchored(data: CohortCurveData, name: str) -> bool:
    """Whether the portfolio mean and group elements of ``name`` are sampled from their conditional given the
    centred elements of its finest level (:func:`_anchored_param`): every parameter with a hierarchy level,
    unless ``data.anchored`` is off, except the whale parameters, which stay non-centred."""
    return bool(data.anchored and _levels(data, name) and name not in WHALE_PARAMS)


def mu_site(data: CohortCurveData, name: str) -> str:
    """The sample site of the portfolio mean of ``name``: ``{name}_mu`` itself, or ``{name}_mu_raw`` when it is
    anchored on its first level (:func:`model`)."""
    return f"{name}_mu_raw" if is_anchored(data, name) else f"{name}_mu"


def independent(data: CohortCurveData, name: str) -> dict:
    """For an anchored parameter (:func:`is_anchored`), which elements of each hierarchy level are sampled as
    their own value (centred) and so inform the elements above them: at the finest level the centred ones; one
    level up, the group elements none of whose children is centred (a group pools many cohorts, so its own
    value is what the data pin); above that none (every element there has such a descendant). The others are
    sampled from their conditional given them (:func:`_anchored_param`)."""
    levels = _levels(data, name)
    finest = levels[-1][1]
    out = {finest: _centered(data, name, finest)}
    informed = out[finest]  # elements with an independent element in their subtree (themselves included)
    for (_, lvl), (_, child) in zip(reversed(levels[:-1]), reversed(levels[1:])):
        has = np.bincount(np.asarray(data.parent[child])[informed], minlength=len(data.parent[lvl])) > 0
        out[lvl] = ~has
        informed = np.ones(len(has), dtype=bool)
    return out


def _anchored_param(name: str, data: CohortCurveData, pr: CohortCurvePriors, values: dict) -> None:
    """One hierarchical parameter with its group elements sampled from their exact conditional given the
    independent elements below them.

    The independent elements ``v_i`` (:func:`independent`: the centred ones of the finest level, and group
    elements without centred children) are sampled as their own value; the other elements of the finest level
    are non-centred. Given the between-group sds and the ``v_i``, the portfolio mean and the remaining group
    elements are jointly normal (a linear-Gaussian tree). An upward pass collects, for every such element ``j``,
    the information of its subtree as a normal likelihood with precision ``P_j`` and precision-weighted mean
    ``B_j`` (an independent child adds ``(1 / sd^2, v_i / sd^2)``, a conditioned child ``k`` adds ``(P_k, B_k)
    / (1 + sd^2 P_k)``); a downward pass then samples ``mu`` and each element given its parent ``theta_p``::

        theta_j = (theta_p + sd^2 B_j) / (1 + sd^2 P_j) + sd / sqrt(1 + sd^2 P_j) eta_j

    (``mu`` likewise with its prior's location and scale). This is a triangular bijection with Jacobian
    ``prod_j sd / sqrt(1 + sd^2 P_j)``, added to the density, so the model is unchanged; ``eta`` is a standard
    normal a posteriori whatever the sds (exactly so when the likelihood sees the groups only through the
    independent elements), so the funnel between group locations and their sds (Betancourt & Girolami 2015,
    "Hamiltonian Monte Carlo for hierarchical models") is gone at every level while well-informed elements stay
    centred. This is backward filtering, forward sampling on the tree (Carter & Kohn 1994, Biometrika 81(3)).
    """
    loc, scale = _prior_loc_scale(name, data, pr)
    levels = _levels(data, name)
    indep = {lvl: jnp.asarray(v) for lvl, v in independent(data, name).items()}
    sds, raws = {}, {}
    for suffix, lvl in levels:
        sds[lvl] = numpyro.sample(f"{name}_sd_{suffix}", dist.HalfNormal(pr.group_sd))
        raws[lvl] = numpyro.sample(f"{name}_{suffix}_raw",
                                   dist.ImproperUniform(dist.constraints.real, (), (len(data.parent[lvl]),)))
    mu_raw = numpyro.sample(f"{name}_mu_raw", dist.ImproperUniform(dist.constraints.real, (), ()))
    own = {lvl: raws[lvl] + _raw_offset(values, data, name, lvl) for _, lvl in levels}  # independent values

    # upward: each level's information (P, B) about its conditioned elements, from the level below
    _, finest = levels[-1]
    child_prec = jnp.where(indep[finest], 1.0 / sds[finest] ** 2, 0.0)
    child_b = jnp.where(indep[finest], own[finest], 0.0) * child_prec
    info = {}
    for (_, lvl), (_, child) in zip(reversed(levels[:-1]), reversed(levels[1:])):
        idx = jnp.asarray(data.parent[child])
        n = len(data.parent[lvl])
        P, B = jax.ops.segment_sum(child_prec, idx, n), jax.ops.segment_sum(child_b, idx, n)
        info[lvl] = (P, B)
        shrink = 1.0 + sds[lvl] ** 2 * P
        child_prec = jnp.where(indep[lvl], 1.0 / sds[lvl] ** 2, P / shrink)
        child_b = jnp.where(indep[lvl], own[lvl] / sds[lvl] ** 2, B / shrink)
    P_mu, B_mu = jnp.sum(child_prec), jnp.sum(child_b)

    # downward: mu and the conditioned elements; independent ones are their own value, the rest of the finest
    # level non-centred (as in _mixed_level)
    def conditional(parent, sd, P, B, eta):
        shrink = 1.0 + sd ** 2 * P
        step = sd / jnp.sqrt(shrink)
        return (parent + sd ** 2 * B) / shrink + step * eta, jnp.log(step)

    mu, log_jac = conditional(loc, scale, P_mu, B_mu, mu_raw)
    values[f"{name}_mu"] = numpyro.deterministic(f"{name}_mu", mu)
    lp = dist.Normal(loc, scale).log_prob(mu) + log_jac
    current = mu[None]
    for suffix, lvl in levels:
        parent_vals = current[data.parent[lvl]]
        if lvl == finest:
            value = jnp.where(indep[lvl], own[lvl], parent_vals + sds[lvl] * raws[lvl])
            lp = lp + jnp.sum(jnp.where(indep[lvl], dist.Normal(parent_vals, sds[lvl]).log_prob(value),
                                        dist.Normal(0.0, 1.0).log_prob(raws[lvl])))
        else:
            cond, log_jac = conditional(parent_vals, sds[lvl], *info[lvl], raws[lvl])
            value = jnp.where(indep[lvl], own[lvl], cond)
            lp = (lp + jnp.sum(jnp.where(indep[lvl], 0.0, log_jac))
                  + jnp.sum(dist.Normal(parent_vals, sds[lvl]).log_prob(value)))
        current = numpyro.deterministic(f"{name}_{suffix}", value)
        values[f"{name}_{suffix}"] = current
    numpyro.factor(f"{name}_prior", lp)


def _sampling_order(data: CohortCurveData) -> list[str]:
    """:func:`param_list` with ``log_ret`` after the curve shape, whose values its offset needs
    (:func:`_raw_offset`); the order of the sites does not change the model."""
    names = list(param_list(data))
    if "log_ret" in names:
        names.remove("log_ret")
        names.insert(max(names.index(p) for p in SHAPE_PARAMS if p in names) + 1, "log_ret")
    return names


def model(data: CohortCurveData, priors: CohortCurvePriors | None = None) -> None:
    """NumPyro model (module docstring): nested partially pooled curve parameters with mixed centring,
    beta-binomial (or moment-matched normal) actives and zero-inflated log-normal revenue per cell."""
    pr = priors or CohortCurvePriors()
    values = {}
    for p in _sampling_order(data):
        if is_anchored(data, p):
            _anchored_param(p, data, pr, values)
            continue
        loc, scale = _prior_loc_scale(p, data, pr)
        mu = numpyro.sample(f"{p}_mu", dist.Normal(loc, scale))
        values[f"{p}_mu"] = mu
        current = mu[None]
        for suffix, lvl in _levels(data, p):
            sd = numpyro.sample(f"{p}_sd_{suffix}", dist.HalfNormal(pr.group_sd))
            value = _mixed_level(f"{p}_{suffix}", current[data.parent[lvl]], sd, _centered(data, p, lvl),
                                 _raw_offset(values, data, p, lvl))
            current = numpyro.deterministic(f"{p}_{suffix}", value)
            values[f"{p}_{suffix}"] = current
    params = cohort_params(values, data)
    noise = {
        "log_k": numpyro.sample("log_k", dist.Normal(0.0, 3.0)),
        "log_tau": numpyro.sample("log_tau", dist.Normal(-1.5, 1.0)),
        # purchase occurrences per active user and period: only zero-revenue cells inform it, so its prior
        # (median 0.14, 95% within 0.003..7) keeps it sampleable when every cell has revenue
        "log_nu": numpyro.sample("log_nu", dist.Normal(-2.0, 2.0)),
    }
    if data.has_active:
        noise["log_phi"] = numpyro.sample("log_phi", dist.Normal(5.0, 3.0))
    if data.revenue_likelihood in WHALE_LIKELIHOODS:
        noise["log_whale_sd"] = numpyro.sample("log_whale_sd", dist.Normal(*WHALE_PRIORS["log_whale_sd"]))
    processes = _calendar_processes(data, pr)
    calendar = calendar_offsets(processes, data, data.observed.shape[1]) if processes else None
    numpyro.factor("loglik", total_log_likelihood(params, noise, data, calendar))


def mass_blocks(data: CohortCurveData) -> list[tuple[str, ...]]:
    """Blocks of NUTS's dense mass matrix (the other sites get a diagonal one): the portfolio means with the noise
    terms, and at each group level the retention shape (``logit_churn`` with ``log_kappa``, sampled as ``log a``
    at the finest level), whose posterior correlation stays about -0.8 there when long curves pin the survival
    curve but not the split between mean churn and polarisation. The cohort level stays diagonal (its size grows
    with the data)."""
    names = param_list(data)
    blocks = [tuple(mu_site(data, p) for p in names) + tuple(noise_names(data))]
    shape = [p for p in ("logit_churn", "log_kappa") if p in names]
    for lvl, suffix in enumerate(data.level_names):
        sites = tuple(f"{p}_{suffix}_raw" for p in shape if (suffix, lvl) in _levels(data, p))
        if len(sites) > 1:
            blocks.append(sites)
    return blocks


def warm_start_fixed(data: CohortCurveData) -> tuple[str, ...]:
    """Sites held at their starting value by :func:`btyd_ltv.inference.find_warm_start`: the between-group sds
    (the joint mode of a centred hierarchy sends them to zero)."""
    return tuple(n for n in param_names(data) if "_sd_" in n)


def init_values(data: CohortCurveData, priors: CohortCurvePriors | None = None) -> dict:
    """NUTS starting point: every parameter at its prior location (centred elements at the portfolio mean,
    non-centred ones at ``z = 0``), between-group sds at 0.2. From numpyro's default uniform(-2, 2) start the
    revenue likelihood of big cohorts is ~1e16 nats off and warmup wastes most of its budget."""
    pr = priors or CohortCurvePriors()
    values = {}
    at_loc = {}  # every parameter's value at every level at the start: its prior location
    for p in param_list(data):
        loc, _ = _prior_loc_scale(p, data, pr)
        at_loc[f"{p}_mu"] = jnp.asarray(loc)
        at_loc.update({f"{p}_{suffix}": jnp.full(len(data.parent[lvl]), loc) for suffix, lvl in _levels(data, p)})
    for p in param_list(data):
        loc, _ = _prior_loc_scale(p, data, pr)
        anchored = is_anchored(data, p)
        values[mu_site(data, p)] = jnp.asarray(0.0 if anchored else loc)  # anchored: eta = 0
        own = independent(data, p) if anchored else None  # conditioned elements start at eta = 0
        for suffix, lvl in _levels(data, p):
            shift = -_raw_offset(at_loc, data, p, lvl)  # raw = value - offset
            values[f"{p}_sd_{suffix}"] = jnp.asarray(0.2)
            centred = own[lvl] if anchored else _centered(data, p, lvl)
            values[f"{p}_{suffix}_raw"] = jnp.where(jnp.asarray(centred), loc + shift, 0.0)
    values.update(log_k=jnp.asarray(0.0), log_tau=jnp.asarray(-1.5), log_nu=jnp.asarray(-2.0))
    if data.has_active:
        values["log_phi"] = jnp.asarray(5.0)
    if data.revenue_likelihood in WHALE_LIKELIHOODS:
        values["log_whale_sd"] = jnp.asarray(WHALE_PRIORS["log_whale_sd"][0])
    for effect in data.calendar_effects:  # a flat process with a small sd
        values[f"cal_{effect}_sd"] = jnp.asarray(0.2 * pr.calendar_sd)
        values[f"cal_{effect}_ar"] = jnp.asarray(0.5)
        values[f"cal_{effect}_z"] = jnp.zeros(data.n_periods)
    return values


def init_strategy(data: CohortCurveData | None = None, priors: CohortCurvePriors | None = None):
    """:func:`numpyro.infer.init_to_value` at :func:`init_values` (``init_to_median`` without data)."""
    from numpyro.infer.initialization import init_to_median, init_to_value

    if data is None:
        return init_to_median(num_samples=15)
    return init_to_value(values=init_values(data, priors))


def posterior_values(posterior, data: CohortCurveData) -> dict:
    """The arrays :func:`cohort_params` and the noise terms need, from an ArviZ posterior group (or a dict of
    arrays), flattened to a leading draw axis ``(S, ...)``."""
    out = {}
    names = [f"{p}_mu" for p in param_list(data)]
    names += [f"{p}_{suffix}" for p in param_list(data) for suffix, _ in _levels(data, p)]
    names += noise_names(data)
    names += [f"cal_{e}{part}" for e in data.calendar_effects for part in ("", "_sd", "_ar")]
    for n in names:
        v = np.asarray(posterior[n])
        if hasattr(posterior, "dims"):  # xarray: (chain, draw, ...)
            v = v.reshape((-1,) + v.shape[2:])
        out[n] = v
    return out


def _thin_draws(values: dict, max_draws: int | None) -> dict:
    S = next(iter(values.values())).shape[0]
    if max_draws is None or S <= max_draws:
        return values
    idx = np.linspace(0, S - 1, max_draws).round().astype(int)
    return {k: v[idx] for k, v in values.items()}


def _expected_logs(values: dict, data: CohortCurveData, horizon: int, calendar: dict | None):
    """``log s_c(t)`` and ``log arpdau_c(t)`` for ages ``0..horizon`` per draw, ``(S, C, horizon + 1)`` each."""
    params = cohort_params({k: jnp.asarray(v) for k, v in values.items()}, data)
    t = jnp.arange(horizon + 1, dtype=jnp.float64)
    return _curve_logs({k: v[..., None] for k, v in params.items()}, data, t, calendar)


def _curve_logs(p: dict, data: CohortCurveData, t, calendar: dict | None):
    """``log s(t)`` and ``log arpdau(t)`` with the calendar offsets, for cohort parameters ``p`` broadcast
    against the ages ``t``: the expected curves of :func:`expected_components` and the simulator's."""
    return _with_calendar(log_retention(data.retention, p, t, data.ref_age), log_arpdau(p, t, data.log_age_center),
                          calendar)


def expected_revenue_per_install(values: dict, data: CohortCurveData, horizon: int,
                                 calendar: dict | None = None) -> np.ndarray:
    """``s_c(t) arpdau_c(t)`` for ages ``0..horizon``, per draw: ``(S, C, horizon + 1)``; with calendar effects,
    ``calendar`` holds their ``(S, C, horizon + 1)`` log offsets (:func:`calendar_offsets`)."""
    log_s, log_a = _expected_logs(values, data, horizon, calendar)
    return np.asarray(jnp.exp(log_s + log_a))


def _extend_processes(key, values: dict, data: CohortCurveData, n_periods: int) -> dict:
    """Every draw's calendar offsets to ``n_periods`` periods: the process ``x`` continued as ``x_p = phi x_{p-1}
    + sigma sqrt(1 - phi^2) z_p`` past the last fitted period ``P - 1``, less its mean over the fitted periods
    (module docstring)."""
    processes = {}
    for effect in data.calendar_effects:
        key, sub = jax.random.split(key)
        x = jnp.asarray(values[f"cal_{effect}"])
        S, P = x.shape
        if n_periods > P:
            sd = jnp.asarray(values[f"cal_{effect}_sd"])[:, None]
            phi = jnp.asarray(values[f"cal_{effect}_ar"])
            step = sd * jnp.sqrt(1.0 - phi[:, None] ** 2)
            future = _ar1(x[:, -1], phi, step * jax.random.normal(sub, (S, n_periods - P)))
            x = jnp.concatenate([x, future], axis=1)
        processes[effect] = _less_fitted_mean(x, P)
    return processes


def _observed_cumulative(data: CohortCurveData, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Observed cumulative revenue per install on ages ``0..horizon`` (NaN beyond each cohort's last observed
    age) and the last observed age per cohort (-1 when none)."""
    C, T = data.observed.shape
    H1 = horizon + 1
    obs = np.zeros((C, H1), dtype=bool)
    rev = np.zeros((C, H1))
    n = min(T, H1)
    obs[:, :n] = data.observed[:, :n]
    rev[:, :n] = data.revenue[:, :n]
    cum = np.cumsum(rev, axis=1) / data.installs[:, None]
    last = np.where(obs.any(axis=1), H1 - 1 - np.argmax(obs[:, ::-1], axis=1), -1)
    cum[np.arange(H1)[None, :] > last[:, None]] = np.nan
    return cum, last


def predictive_ltv(
    values: dict,
    data: CohortCurveData,
    horizon: int,
    *,
    kind: str = "predictive",
    max_draws: int | None = 400,
    seed: int = 0,
    chunk: int = 50,
) -> np.ndarray:
    """Draws of the cumulative LTV per install ``L_c(D)``, ``D = 0..horizon``: array ``(C, horizon + 1, S)``
    (float32), non-decreasing in ``D`` for every draw.

    ``kind="predictive"`` (the forecast): the observed cumulative value up to each cohort's last observed age
    ``k_c``, then per posterior draw simulated future cells -- active users from the beta-binomial
    ``(N, s phi, (1 - s) phi)`` (binomial without ``phi``; ``N s`` when the data have no active users) and
    revenue from the cell's zero-inflated log-normal -- added up: ``L(D) = L_obs(k) + sum_{k < t <= D} R_t / N``.
    ``kind="expected"``: the model's expected curve ``sum_{t <= D} s_c(t) arpdau_c(t)`` from age 0, not anchored
    on the data (the quantity a simulation's true curve is compared with). With calendar effects both kinds
    continue each draw's calendar processes past the fitted periods (:func:`_extend_processes`).
    """
    if kind not in ("predictive", "expected"):
        raise ValueError(f"kind must be 'predictive' or 'expected', got {kind!r}")
    values = _thin_draws(values, max_draws)
    S = next(iter(values.values())).shape[0]
    C = data.installs.shape[0]
    H1 = horizon + 1
    out = np.empty((C, H1, S), dtype=np.float32)
    cum_obs, last = _observed_cumulative(data, horizon)
    future = np.arange(H1)[None, :] > last[:, None]  # (C, H1)
    installs = jnp.asarray(data.installs)[:, None]
    t = jnp.arange(H1, dtype=jnp.float64)
    simulate = _simulator(data)
    base = np.nan_to_num(cum_obs[np.arange(C), np.maximum(last, 0)], nan=0.0) * (last >= 0)
    observed_part = np.nan_to_num(cum_obs)[None]
    for start, sl, sub, calendar in _draw_chunks(values, data, H1, seed, chunk):
        if kind == "expected":
            inc = expected_revenue_per_install(sl, data, horizon, calendar)  # (s, C, H1)
            out[:, :, start:start + chunk] = np.cumsum(inc, axis=-1).transpose(1, 2, 0)
            continue
        rev = np.asarray(simulate(sub, sl, installs, t, calendar))  # (s, C, H1) simulated revenue per install
        rev = np.where(future[None], rev, 0.0)
        cum = base[None, :, None] + np.cumsum(rev, axis=-1)
        cum = np.where(future[None], cum, observed_part)
        out[:, :, start:start + chunk] = cum.transpose(1, 2, 0)
    return out


def _draw_chunks(values: dict, data: CohortCurveData, n_ages: int, seed: int, chunk: int):
    """Yield ``(start, draws, key, calendar)`` per chunk of ``chunk`` posterior draws: the chunk's arrays, a fresh
    PRNG key and, with calendar effects, the log offsets of ages ``0..n_ages-1`` from the processes continued past
    the fitted periods (:func:`_extend_processes`; ``{}`` without). The same seed gives the same keys."""
    S = next(iter(values.values())).shape[0]
    key = jax.random.PRNGKey(seed)
    n_periods = int(np.max(data.acquired)) + n_ages if data.calendar_effects else 0
    for start in range(0, S, chunk):
        sl = {k: jnp.asarray(v[start:start + chunk]) for k, v in values.items()}
        key, sub = jax.random.split(key)
        processes = _extend_processes(jax.random.fold_in(sub, 1), sl, data, n_periods) if n_periods else {}
        yield start, sl, sub, calendar_offsets(processes, data, n_ages) if processes else {}


def expected_components(
    values: dict,
    data: CohortCurveData,
    horizon: int,
    *,
    max_draws: int | None = 400,
    seed: int = 0,
    chunk: int = 50,
) -> dict[str, np.ndarray]:
    """Draws of the two curves whose product is the expected revenue per install: ``"retention"`` ``s_c(t)`` and
    ``"arpdau"`` ``arpdau_c(t)`` (revenue per active user), ages ``0..horizon``, arrays ``(C, horizon + 1, S)``
    (float32). With calendar effects both include each draw's calendar offsets, continued past the fitted periods
    with the draws and seed :func:`predictive_ltv` uses (same ``max_draws``, ``seed`` and ``chunk``: the same
    processes). ``L_c(D) = sum_{t <= D} s_c(t) arpdau_c(t)`` is ``predictive_ltv(kind="expected")``."""
    values = _thin_draws(values, max_draws)
    S = next(iter(values.values())).shape[0]
    shape = (data.installs.shape[0], horizon + 1, S)
    out = {"retention": np.empty(shape, dtype=np.float32), "arpdau": np.empty(shape, dtype=np.float32)}
    for start, sl, _, calendar in _draw_chunks(values, data, horizon + 1, seed, chunk):
        for name, log_x in zip(("retention", "arpdau"), _expected_logs(sl, data, horizon, calendar)):
            out[name][:, :, start:start + chunk] = np.exp(np.asarray(log_x)).transpose(1, 2, 0)
    return out


def _simulator(data: CohortCurveData):
    """Jitted simulation of revenue per install for every cell ``(s, C, H1)`` given a chunk of draws."""

    @jax.jit
    def simulate(key, values, installs, t, calendar):
        params = cohort_params(values, data)
        p = {k: v[..., None] for k, v in params.items()}
        log_s, log_a = _curve_logs(p, data, t, calendar)  # (s, C, H1)
        k_act, k_pos, k_amt = jax.random.split(key, 3)
        s = jnp.clip(jnp.exp(log_s), _EPS, 1.0 - _EPS)
        n = jnp.broadcast_to(installs, s.shape)
        if data.has_active:
            phi = jnp.exp(values["log_phi"])[:, None, None]
            k1, k2 = jax.random.split(k_act)
            q = jax.random.beta(k1, s * phi, (1.0 - s) * phi)
            q = jnp.clip(q, 0.0, 1.0)
            users = jax.random.binomial(k2, n, q).astype(jnp.float64)
            log_users = jnp.log(jnp.maximum(users, _EPS))
        else:
            users = n * s
            log_users = jnp.log(n) + log_s
        noise = {k: values[k][:, None, None] for k in noise_names(data) if k != "log_phi"}
        revenue = _draw_revenue(k_pos, k_amt, users, log_users, log_a, noise, data.revenue_likelihood,
                                _whale(p, noise, data))
        return revenue / installs[None]

    return simulate


def _draw_revenue(k_pos, k_amt, users, log_users, log_a, noise: dict, kind: str, whale: tuple | None):
    """One draw of every cell's revenue given its active users from the density of :func:`_revenue_log_prob`
    (``noise`` holds ``log_k``, ``log_nu``, ``log_tau`` and, for the whale mixtures, ``log_whale_sd``)."""
    shape = jnp.shape(users)
    log_p0, _, log_mean, cv2 = _revenue_params(users, log_users, log_a, noise["log_k"], noise["log_nu"],
                                               noise["log_tau"])
    if kind in COMPOUND_LIKELIHOODS:  # the purchase count, then its amounts' sum given the count (module docstring)
        m = jnp.exp(noise["log_nu"]) * jnp.maximum(users, _EPS)
        count = jax.random.poisson(k_pos, m, shape).astype(log_mean.dtype)
        positive = count > 0
        cv2 = _compound_cv2(m, noise["log_k"], noise["log_tau"])
        tau2 = jnp.exp(2.0 * noise["log_tau"])
        cv2_n = (1.0 + jnp.exp(-noise["log_k"]) / jnp.maximum(count, 1.0)) * (1.0 + tau2) - 1.0
        mean_n = jnp.exp(log_mean) * -jnp.expm1(-m) / m * count  # E[sum | N] = N x mean purchase
    else:
        positive = jax.random.uniform(k_pos, shape) >= jnp.exp(log_p0)
    if kind == "gamma":
        amount = jnp.exp(log_mean) * jax.random.gamma(k_amt, 1.0 / cv2) * cv2
    elif kind == "compound":
        amount = mean_n * jax.random.gamma(k_amt, 1.0 / cv2_n) * cv2_n
    else:
        log_mean_all = log_mean
        if kind in WHALE_LIKELIHOODS:
            k_amt, k_whale = jax.random.split(k_amt)
            log_omega, _, log_m0, log_m1, cv1 = _whale_components(users, log_mean, cv2, whale)
            is_whale = jnp.log(jax.random.uniform(k_whale, shape)) < log_omega
            log_mean = jnp.where(is_whale, log_m1, log_m0)
            cv2 = jnp.where(is_whale, cv1, cv2)
        scale2 = jnp.log1p(cv2)
        amount = jnp.exp(log_mean - 0.5 * scale2 + jnp.sqrt(scale2) * jax.random.normal(k_amt, shape))
        if kind == "whale-compound":  # the cells without a whale purchase: the sum of their purchases, share 1 - s
            share0 = jnp.exp(log_m0 - log_mean_all)
            regular = share0 * mean_n * jax.random.gamma(jax.random.fold_in(k_amt, 1), 1.0 / cv2_n) * cv2_n
            amount = jnp.where(is_whale, amount, regular)
    return jnp.where((users > 0) & positive, amount, 0.0)
