"""Population priors on the portfolio means (``CohortCurvePriors.population``): they replace the default prior of
the parameters they name, in the plain and in the anchored (conditionally sampled) form of the hierarchy, and
malformed ones are refused with the parameter named."""

from __future__ import annotations

import numpy as np
import pytest

import numpyro
from numpyro import handlers

from btyd_ltv.data.portfolio import simulate_portfolio
from btyd_ltv.errors import DataValidationError
from btyd_ltv.models import cohort_curve as cc


@pytest.fixture(scope="module")
def table():
    table, _ = simulate_portfolio(n_apps=2, campaigns_per_app=2, days=5, seed=3, retention="bgbb")
    return table


def _data(table, **kw):
    data, _ = cc.make_data(table, group_cols=("app", "campaign"), **kw)
    return data


def _trace(data, priors, seed=0):
    """One draw of every site: proper priors sampled, the improper raw sites of the mixed levels standard normal
    (the same for a given ``seed`` whatever ``priors``)."""
    rng = np.random.default_rng(seed)

    def raw(site):
        fn = site.get("fn")
        if isinstance(fn, numpyro.distributions.ImproperUniform):
            return rng.standard_normal(fn.batch_shape + fn.event_shape)
        return None

    model = handlers.substitute(handlers.seed(cc.model, rng_seed=seed), substitute_fn=raw)
    return handlers.trace(model).get_trace(data, priors)


def test_population_prior_is_the_prior_of_the_named_portfolio_means(table):
    """Plain hierarchy (``anchored=False``): ``{p}_mu`` is sampled from ``N(loc, scale)`` for the named
    parameters and from the default prior for the others."""
    data = _data(table, anchored=False)
    default = _trace(data, cc.CohortCurvePriors())
    priors = cc.CohortCurvePriors(population=(("logit_churn", 1.7, 0.05), ("rho", -0.3, 0.2)))
    tr = _trace(data, priors)
    for name, loc, scale in priors.population:
        fn = tr[f"{name}_mu"]["fn"]
        assert (float(fn.loc), float(fn.scale)) == (loc, scale)
        assert (float(default[f"{name}_mu"]["fn"].loc), float(default[f"{name}_mu"]["fn"].scale)) != (loc, scale)
    for name in ("log_kappa", "log_level"):
        fn, ref = tr[f"{name}_mu"]["fn"], default[f"{name}_mu"]["fn"]
        assert (float(fn.loc), float(fn.scale)) == (float(ref.loc), float(ref.scale))


def test_population_prior_enters_the_anchored_portfolio_mean(table):
    """Anchored hierarchy (the default): the portfolio mean is drawn from its conditional given the centred
    elements below it, a normal whose precision adds ``1 / scale^2`` to theirs; as the scale goes to 0 the mean
    is ``loc`` whatever the other draws, and a prior centred elsewhere moves it."""
    data = _data(table)
    assert cc.is_anchored(data, "logit_churn") and cc.is_anchored(data, "rho")
    priors = cc.CohortCurvePriors(population=(("logit_churn", 1.7, 1e-7), ("rho", -0.3, 1e-7)))
    for seed in range(3):
        tr = _trace(data, priors, seed)
        assert float(tr["logit_churn_mu"]["value"]) == pytest.approx(1.7, abs=1e-5)
        assert float(tr["rho_mu"]["value"]) == pytest.approx(-0.3, abs=1e-5)
        free = _trace(data, cc.CohortCurvePriors(), seed)
        assert abs(float(free["logit_churn_mu"]["value"]) - 1.7) > 1e-3
        # the raw draws are the same; only the prior moved the mean
        np.testing.assert_array_equal(tr["logit_churn_mu_raw"]["value"], free["logit_churn_mu_raw"]["value"])


def test_population_prior_changes_the_log_density_by_the_prior_terms_only(table):
    """At the same values of every site, the joint log density with a population prior differs from the default
    one by exactly ``log N(mu; loc, scale) - log N(mu; default loc, default scale)`` (plain hierarchy)."""
    from numpyro.infer.util import log_density

    data = _data(table, anchored=False)
    values = {k: v["value"] for k, v in _trace(data, cc.CohortCurvePriors()).items() if v["type"] == "sample"
              and not v["is_observed"]}
    priors = cc.CohortCurvePriors(population=(("log_kappa", 0.8, 0.3),))
    base, _ = log_density(cc.model, (data, cc.CohortCurvePriors()), {}, values)
    new, _ = log_density(cc.model, (data, priors), {}, values)
    mu = float(values["log_kappa_mu"])
    loc, scale = cc._prior_loc_scale("log_kappa", data, cc.CohortCurvePriors())
    want = (numpyro.distributions.Normal(0.8, 0.3).log_prob(mu) - numpyro.distributions.Normal(loc, scale).log_prob(mu))
    assert float(new - base) == pytest.approx(float(want), rel=1e-10, abs=1e-10)


@pytest.mark.parametrize("population, message", [
    ((("log_c", 0.0, 1.0),), "'log_c' is not a parameter of this model \\(bgbb retention"),
    ((("rho", 0.0, 1.0), ("rho", 0.1, 1.0)), "'rho' is given twice"),
    ((("rho", 0.0, 0.0),), "population prior of 'rho': .*scale positive"),
    ((("rho", float("nan"), 1.0),), "population prior of 'rho': the location must be finite"),
    ((("rho", 0.0),), "must be \\(name, loc, scale\\)"),
    ((("rho", "x", 1.0),), "must be \\(name, loc, scale\\)"),
])
def test_bad_population_prior_is_refused(table, population, message):
    with pytest.raises(DataValidationError, match=message):
        cc.check_population(population, _data(table))


def test_checked_population_prior_is_floats():
    table, _ = simulate_portfolio(n_apps=1, campaigns_per_app=1, days=3, seed=1, retention="bgbb")
    got = cc.check_population([["rho", 1, np.float32(0.5)]], _data(table))
    assert got == (("rho", 1.0, 0.5),) and all(type(v) is float for v in got[0][1:])
