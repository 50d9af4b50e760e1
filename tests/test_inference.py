"""fit(): reproducibility from the seed, InferenceData layout, MAP attributes, diagnostics and warnings."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from btyd_ltv.data.compress import compress_rfm
from btyd_ltv.data.simulate import cdnow_like_T, simulate_bgnbd
from btyd_ltv.errors import SamplingWarning
from btyd_ltv.inference import RHAT_MAX, ESS_MIN, default_chain_method, diagnose, fit
from btyd_ltv.models import bgnbd
from btyd_ltv.models import gamma_gamma as gg

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    import arviz as az

SMALL = dict(num_chains=1, num_warmup=100, num_samples=100, progress_bar=False, warn=False)


@pytest.fixture(scope="module")
def small_bgnbd_data():
    sim = simulate_bgnbd(300, r=0.5, alpha=6.0, a=1.2, b=3.0, T=cdnow_like_T(300, seed=1), seed=1)
    return bgnbd.make_data_from_compressed(compress_rfm(sim.set_index("customer_id")))


@pytest.fixture(scope="module")
def seed0(small_bgnbd_data):
    with warnings.catch_warnings():
        warnings.simplefilter("error", SamplingWarning)  # 100 draws fail the diagnostics; warn=False is quiet
        return fit(bgnbd, small_bgnbd_data, seed=0, **SMALL)


def test_same_seed_gives_bit_identical_posterior(small_bgnbd_data, seed0):
    again = fit("bgnbd", small_bgnbd_data, seed=0, **SMALL)
    for k in seed0.posterior.data_vars:
        np.testing.assert_array_equal(again.posterior[k].values, seed0.posterior[k].values)
    for k in seed0.sample_stats.data_vars:
        np.testing.assert_array_equal(again.sample_stats[k].values, seed0.sample_stats[k].values)


def test_different_seed_gives_a_different_posterior(small_bgnbd_data, seed0):
    other = fit(bgnbd, small_bgnbd_data, seed=1, **SMALL)
    assert not np.array_equal(other.posterior["r"].values, seed0.posterior["r"].values)
    # ... but of the same distribution: the posterior means agree within a few Monte Carlo standard errors
    for k in ("r", "alpha"):
        a, b = seed0.posterior[k].values.ravel(), other.posterior[k].values.ravel()
        assert abs(a.mean() - b.mean()) < 0.5 * (a.std() + b.std())


def test_inference_data_layout(small_bgnbd_data, seed0):
    idata = seed0
    assert set(idata.groups()) == {"posterior", "sample_stats", "constant_data"}
    post = idata.posterior
    assert post.sizes["chain"] == 1 and post.sizes["draw"] == 100
    # sampled sites and deterministic a, b
    assert set(post.data_vars) == {"r", "alpha", "phi_dropout", "kappa_dropout", "a", "b"}
    np.testing.assert_allclose(post["a"], post["phi_dropout"] * post["kappa_dropout"], rtol=1e-12)
    np.testing.assert_allclose(post["b"], (1 - post["phi_dropout"]) * post["kappa_dropout"], rtol=1e-12)
    assert {"diverging", "energy", "lp", "n_steps", "acceptance_rate", "step_size"} <= set(idata.sample_stats.data_vars)
    assert idata.sample_stats["diverging"].dtype == bool
    assert {"x", "t_x", "T", "weights", "x_levels", "x_weight", "T_levels"} <= set(idata.constant_data.data_vars)
    assert idata.attrs["model"] == "bgnbd"
    assert idata.attrs["method"] == "nuts"
    assert idata.attrs["seed"] == 0
    assert idata.attrs["num_chains"] == 1
    assert idata.attrs["num_warmup"] == 100
    assert idata.attrs["num_samples"] == 100
    assert idata.attrs["priors"] == "default"
    assert idata.attrs["chain_method"] == "sequential"


def test_constant_data_holds_the_likelihood_data(small_bgnbd_data, seed0):
    """constant_data records the data the posterior was fitted to: each array verbatim, with its own dimension
    (no chain/draw dimensions, no NaN padding to a common length)."""
    const = seed0.constant_data
    for k in ("x", "t_x", "T", "weights", "x_levels", "x_weight", "T_levels", "T_weight"):
        ref = np.asarray(getattr(small_bgnbd_data, k))
        assert "chain" not in const[k].dims and "draw" not in const[k].dims, (k, const[k].dims)
        np.testing.assert_array_equal(const[k].values, ref)


def test_lp_is_the_log_density(small_bgnbd_data, seed0):
    """sample_stats.lp is minus NumPyro's potential energy: log prior + log likelihood in unconstrained space
    (log-Jacobian included); check its likelihood part moves with the draws by recomputing at two draws."""
    from numpyro.infer.util import log_density

    post = seed0.posterior
    lp = seed0.sample_stats["lp"].values[0]
    diffs = []
    for i in (0, 99):
        params = {k: float(post[k].values[0, i]) for k in ("r", "alpha", "phi_dropout", "kappa_dropout")}
        ld, _ = log_density(bgnbd.model, (), {"data": small_bgnbd_data}, params)
        # Jacobian of the unconstraining transforms: log r + log alpha + log(phi(1-phi)) + log(kappa)
        phi, kappa = params["phi_dropout"], params["kappa_dropout"]
        jac = np.log(params["r"]) + np.log(params["alpha"]) + np.log(phi * (1 - phi)) + np.log(kappa)
        diffs.append(float(ld) + jac - lp[i])
    np.testing.assert_allclose(diffs, 0.0, atol=1e-6)


def test_map_result():
    data = gg.make_data([1, 2, 3, 5, 1, 2, 4, 1], [10.0, 20.0, 5.0, 12.0, 30.0, 8.0, 15.0, 22.0])
    idata = fit("gamma-gamma", data, method="map", num_samples=4000, seed=4, num_chains=4, num_warmup=50)
    assert set(idata.groups()) == {"posterior", "constant_data"}
    assert idata.posterior.sizes["chain"] == 1 and idata.posterior.sizes["draw"] == 4000
    assert idata.attrs["model"] == "gamma_gamma" and idata.attrs["method"] == "map" and idata.attrs["seed"] == 4
    assert idata.attrs["num_chains"] == 1 and idata.attrs["num_warmup"] == 0 and idata.attrs["num_samples"] == 4000
    assert idata.attrs["map_converged"] == 1 and idata.attrs["map_iterations"] > 0
    for k in ("p", "q_minus_1", "mean_spend", "q", "gamma"):
        assert np.isfinite(idata.attrs[f"map_{k}"]) and idata.attrs[f"map_{k}"] > 0
    # deterministic sites at the mode are functions of the mode
    a = idata.attrs
    assert a["map_q"] == pytest.approx(1.0 + a["map_q_minus_1"], rel=1e-12)
    assert a["map_gamma"] == pytest.approx(a["map_mean_spend"] * a["map_q_minus_1"] / a["map_p"], rel=1e-12)
    # Laplace draws are normal in log space around the mode: the median of every sampled site is its mode
    for k in ("p", "q_minus_1", "mean_spend"):
        assert float(np.median(idata.posterior[k])) == pytest.approx(a[f"map_{k}"], rel=0.05)
    # MAP skips the MCMC diagnostics
    d = diagnose(idata, gg.PARAM_NAMES)
    assert d.ok and d.divergences == 0 and np.isnan(d.max_rhat)


def test_flat_priors_with_nuts_raise(small_bgnbd_data):
    with pytest.raises(ValueError, match="flat priors"):
        fit(bgnbd, small_bgnbd_data, priors=bgnbd.BGNBDPriors(kind="flat"), method="nuts")
    data = gg.make_data([1, 2], [10.0, 20.0])
    with pytest.raises(ValueError, match="flat priors"):
        fit(gg, data, priors=gg.GammaGammaPriors(kind="flat"))


def test_unknown_method_and_model(small_bgnbd_data):
    with pytest.raises(ValueError, match="method"):
        fit(bgnbd, small_bgnbd_data, method="vi")
    with pytest.raises(ValueError, match="unknown model"):
        fit("pareto-nbd", small_bgnbd_data)


def _fake_nuts(chains: list[np.ndarray], diverging: int = 0) -> az.InferenceData:
    post = np.stack(chains)
    div = np.zeros(post.shape, dtype=bool)
    div.flat[:diverging] = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return az.from_dict(posterior={"r": post, "alpha": post + 3.0}, sample_stats={"diverging": div},
                            attrs={"method": "nuts"})


def test_diagnose_single_chain_fit(seed0):
    """One NUTS chain: R-hat is undefined (NaN); diagnose must report it, not crash (fit(num_chains=1) with the
    default warn=True calls it)."""
    assert seed0.posterior.sizes["chain"] == 1
    d = diagnose(seed0, bgnbd.PARAM_NAMES)
    assert not d.ok
    assert d.min_ess_bulk < ESS_MIN  # 100 draws


def test_diagnose_passes_well_mixed_iid_chains():
    rng = np.random.default_rng(0)
    idata = _fake_nuts([rng.standard_normal(1000) for _ in range(4)])
    d = diagnose(idata, ["r", "alpha"])
    assert d.ok and d.messages == []
    assert d.max_rhat == pytest.approx(float(az.rhat(idata)["r"]), abs=0.005)
    assert d.min_ess_bulk == pytest.approx(min(float(az.ess(idata, method="bulk")[k]) for k in ("r", "alpha")), abs=0.5)
    assert d.max_rhat < RHAT_MAX and d.min_ess_bulk > ESS_MIN and d.divergences == 0


def test_diagnose_flags_disagreeing_chains_and_divergences():
    rng = np.random.default_rng(1)
    idata = _fake_nuts([rng.standard_normal(1000), 5.0 + rng.standard_normal(1000)], diverging=3)
    d = diagnose(idata, ["r", "alpha"])
    assert not d.ok
    assert d.max_rhat > 1.5 and d.divergences == 3
    assert len(d.messages) == 3
    assert "R-hat" in d.messages[0] and "ESS" in d.messages[1] and "3 divergent" in d.messages[2]


def test_diagnose_names_the_sites_with_the_highest_rhat_and_the_lowest_ess():
    """Chains of the second element of ``r`` disagree: it has the highest R-hat; in a second posterior only
    ``alpha`` mixes slowly (AR(1) chains with autocorrelation 0.95): it has the lowest ESS."""
    rng = np.random.default_rng(3)

    def posterior(r, alpha):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return az.from_dict(posterior={"r": r, "alpha": alpha}, attrs={"method": "nuts"})

    r = rng.standard_normal((4, 1000, 2))
    r[2:, :, 1] += 3.0
    d = diagnose(posterior(r, rng.standard_normal((4, 1000))), ["r", "alpha"])
    assert d.rhat_site == "r[1]" and "for 'r[1]'" in d.messages[0]
    alpha = np.zeros((4, 1000))
    for t in range(1, 1000):
        alpha[:, t] = 0.95 * alpha[:, t - 1] + rng.standard_normal(4)
    d = diagnose(posterior(rng.standard_normal((4, 1000, 2)), alpha), ["r", "alpha"])
    assert d.ess_site == "alpha" and d.min_ess_bulk < ESS_MIN and any("for 'alpha'" in m for m in d.messages)


def test_diagnose_flags_low_ess_only():
    rng = np.random.default_rng(2)
    idata = _fake_nuts([rng.standard_normal(60) for _ in range(4)])  # ESS ~ 240 < 400
    d = diagnose(idata, ["r"])
    assert len(d.messages) == 1 and d.messages[0].startswith("ESS bulk")
    assert d.min_ess_bulk < ESS_MIN


def test_diagnose_flags_rhat_just_above_the_threshold():
    """R-hat 1.012 > 1.01 must be flagged (az.summary rounds R-hat to 2 decimals by default, which would hide
    values up to 1.015)."""
    rng = np.random.default_rng(5)
    idata = _fake_nuts([rng.standard_normal(2000) + o for o in (-0.2, -0.2 / 3, 0.2 / 3, 0.2)])
    rhat = float(az.rhat(idata)["r"])
    assert 1.011 < rhat < 1.013
    d = diagnose(idata, ["r"])
    assert d.max_rhat == pytest.approx(rhat, rel=1e-9)
    assert any(m.startswith("R-hat") for m in d.messages)


def test_tiny_run_warns(small_bgnbd_data):
    with pytest.warns(SamplingWarning, match="ESS") as record:
        idata = fit(bgnbd, small_bgnbd_data, num_chains=2, num_warmup=20, num_samples=20, seed=3,
                    progress_bar=False, warn=True)
    d = diagnose(idata, bgnbd.PARAM_NAMES)
    assert not d.ok and d.min_ess_bulk < ESS_MIN
    assert [str(w.message) for w in record if w.category is SamplingWarning] == d.messages


@pytest.mark.parametrize("warm_start, depth", [(False, 2), (True, 2), (True, (10, 2))])
def test_max_tree_depth_caps_the_trajectories_and_is_counted(small_bgnbd_data, seed0, warm_start, depth):
    """``max_tree_depth=d`` (or ``(warmup, d)``) stops NUTS at 2^d - 1 leapfrog steps per draw, in both samplers
    (plain and warm start); :func:`diagnose` counts the draws at the cap, and 0 for a fit with NumPyro's default
    cap of 10."""
    idata = fit(bgnbd, small_bgnbd_data, seed=0, max_tree_depth=depth, warm_start=warm_start, **SMALL)
    steps = np.asarray(idata.sample_stats["n_steps"])
    assert idata.attrs["max_tree_depth"] == 2
    assert steps.max() <= 3
    d = diagnose(idata, bgnbd.PARAM_NAMES)
    assert d.at_max_depth == int((steps == 3).sum()) > 0  # a BG/NBD draw needs more than 3 steps
    assert seed0.attrs["max_tree_depth"] == 10
    assert np.asarray(seed0.sample_stats["n_steps"]).max() > 3
    assert diagnose(seed0, bgnbd.PARAM_NAMES).at_max_depth == 0


def test_default_chain_method():
    import jax

    assert default_chain_method(1) == "sequential"
    n = jax.local_device_count()
    assert default_chain_method(n) == ("parallel" if n > 1 else "sequential")
    if jax.default_backend() == "cpu":
        assert default_chain_method(n + 1) == "sequential"
    else:
        assert default_chain_method(n + 1) == "vectorized"


def _independent_normals():
    import numpyro
    import numpyro.distributions as dist

    numpyro.sample("x", dist.Normal(np.array([1.0, 2.0, 3.0]), np.array([0.01, 0.1, 1.0])))
    numpyro.sample("y", dist.LogNormal(0.0, 0.5))


def test_find_warm_start_finds_the_mode_and_the_hessian_diagonal():
    """Independent normals: the mode is the location and the Hessian diagonal 1 / scale^2 (for the log-normal
    site, in its unconstrained coordinate log y with the Jacobian: N(0, 0.5) -> 4)."""
    import jax

    from btyd_ltv.inference import find_warm_start

    start = find_warm_start(_independent_normals, {}, jax.random.PRNGKey(0))
    np.testing.assert_allclose(np.asarray(start.z["x"]), [1.0, 2.0, 3.0], atol=1e-5)
    np.testing.assert_allclose(float(start.z["y"]), 0.0, atol=1e-5)
    np.testing.assert_allclose(start.hessian_diagonal["x"], [1e4, 1e2, 1.0], rtol=1e-6)
    np.testing.assert_allclose(start.hessian_diagonal["y"], 4.0, rtol=1e-6)
    np.testing.assert_allclose(start.scales()["x"], [0.01, 0.1, 1.0], rtol=1e-6)


def test_find_warm_start_holds_fixed_sites():
    import jax
    from numpyro.infer.initialization import init_to_value

    from btyd_ltv.inference import find_warm_start

    start = find_warm_start(_independent_normals, {}, jax.random.PRNGKey(0), init_to_value(values={"y": 2.0}),
                            fixed=("y",))
    np.testing.assert_allclose(float(start.z["y"]), np.log(2.0), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(start.z["x"]), [1.0, 2.0, 3.0], atol=1e-5)


def _ill_conditioned(locs, scales):
    import numpyro
    import numpyro.distributions as dist

    x = numpyro.sample("x", dist.Normal(locs, scales))
    numpyro.sample("y", dist.Normal(x.sum(), 1.0), obs=0.0)  # couples the elements


def test_find_warm_start_reaches_the_mode_when_curvatures_span_orders_of_magnitude():
    """Scales 1e-4..1 (curvatures spanning eight orders of magnitude), coupled through their sum: plain L-BFGS
    from the prior's draw stops after 30 iterations hundreds of sds from the mode (checked below with scipy
    directly); the second, curvature-scaled search lands within 1e-2 sd of the exact mode
    ``(diag(1/s^2) + 1 1^T)^-1 (locs / s^2)``."""
    import jax
    import scipy.optimize
    from numpyro.infer.util import initialize_model

    from btyd_ltv.inference import find_warm_start

    scales = np.logspace(-4, 0, 40)
    locs = np.linspace(-1.0, 1.0, 40)
    kwargs = {"locs": locs, "scales": scales}
    mode = np.linalg.solve(np.diag(1.0 / scales**2) + 1.0, locs / scales**2)
    info = initialize_model(jax.random.PRNGKey(0), _ill_conditioned, model_kwargs=kwargs)
    value_and_grad = jax.jit(jax.value_and_grad(lambda u: info.potential_fn({"x": u})))

    def fun(u):
        v, g = value_and_grad(u)
        return float(v), np.asarray(g, dtype=np.float64)

    plain = scipy.optimize.minimize(fun, np.asarray(info.param_info.z["x"]), jac=True, method="L-BFGS-B",
                                    options={"maxiter": 30})
    assert np.abs((plain.x - mode) / scales).max() > 10.0  # the unscaled search alone does not get there
    start = find_warm_start(_ill_conditioned, kwargs, jax.random.PRNGKey(0), max_iter=30)
    assert np.abs((np.asarray(start.z["x"]) - mode) / scales).max() < 1e-2
    unscaled, scaled = start.stage_potentials
    np.testing.assert_allclose(unscaled, plain.fun, rtol=1e-12)  # the first search is the plain one
    assert scaled < unscaled and scaled == start.potential
    # one probe per site moves every element at once, so it returns the Hessian's row sums 1/s^2 + 40 (the
    # documented limitation for elements that interact), which is its diagonal up to the coupling
    np.testing.assert_allclose(start.hessian_diagonal["x"], 1.0 / scales**2 + 40.0, rtol=1e-4)


def _correlated_normal(cov):
    import numpyro
    import numpyro.distributions as dist

    numpyro.sample("x", dist.MultivariateNormal(np.array([1.0, -2.0, 0.5]), covariance_matrix=cov))
    numpyro.sample("y", dist.LogNormal(0.0, 0.5))


def test_dense_warm_start_whitens_a_correlated_normal():
    """A normal with correlations up to 0.99 and scales 1e-3..1: the dense Hessian is the precision matrix, and
    the affine map takes u ~ N(0, I) to z ~ N(mode, covariance): its matrix A has A A^T equal to the covariance
    (for the held site, the diagonal scale)."""
    import jax

    from btyd_ltv.inference import find_warm_start

    sd = np.array([1e-3, 0.1, 1.0])
    corr = np.array([[1.0, 0.99, -0.5], [0.99, 1.0, -0.4], [-0.5, -0.4, 1.0]])
    cov = corr * np.outer(sd, sd)
    start = find_warm_start(_correlated_normal, {"cov": cov}, jax.random.PRNGKey(0), dense=True, max_iter=2000)
    assert start.dense_sites == ("x", "y")
    np.testing.assert_allclose(np.asarray(start.z["x"]), [1.0, -2.0, 0.5], atol=1e-6)
    precision = np.linalg.inv(cov)
    np.testing.assert_allclose(start.hessian[:3, :3], precision, rtol=1e-6, atol=1e-6 * np.abs(precision).max())
    np.testing.assert_allclose(start.hessian[3, 3], 4.0, rtol=1e-6)
    to_z, u0 = start.affine_map()
    base = to_z(u0)
    cols = []
    for i in range(4):
        u = {k: v.at[i].set(1.0) for k, v in u0.items()}
        z = to_z(u)
        cols.append(np.concatenate([np.asarray(z["x"] - base["x"]), [float(z["y"] - base["y"])]]))
    a = np.stack(cols, axis=1)
    np.testing.assert_allclose((a @ a.T)[:3, :3], cov, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose((a @ a.T)[3, 3], 0.25, rtol=1e-6)


def _tree_precision(groups=6, per_group=40, seed=0):
    """The precision matrix of a two-level normal hierarchy: one global mean, ``groups`` group means and
    ``per_group`` leaves under each, with a shared noise term touching every leaf (the arrow shape of the
    cohort-curve Hessian)."""
    rng = np.random.default_rng(seed)
    n = 2 + groups + groups * per_group
    h = np.zeros((n, n))
    glob, noise = 0, 1
    h[glob, glob] = h[noise, noise] = 1.0
    for g in range(groups):
        gi = 2 + g
        w = rng.uniform(0.5, 4.0)
        h[np.ix_([glob, gi], [glob, gi])] += w * np.array([[1.0, -1.0], [-1.0, 1.0]])
        h[gi, gi] += 0.1
        for j in range(per_group):
            li = 2 + groups + g * per_group + j
            v, c = rng.uniform(1.0, 50.0), rng.uniform(-0.5, 0.5)
            h[np.ix_([gi, li], [gi, li])] += v * np.array([[1.0, -1.0], [-1.0, 1.0]])
            h[li, li] += 1.0
            h[li, noise] = h[noise, li] = c
            h[noise, noise] += abs(c) * 2
    return h


def test_whitening_inverts_the_hessian_and_keeps_a_tree_sparse():
    """``A A^T = H^-1`` (checked against numpy's inverse) with ``A`` as sparse as the hierarchy: a leaf's row holds
    itself and its ancestors in the elimination tree (its group, the groups eliminated after it, the noise term),
    so at most groups + 2 non-zeros per row instead of n."""
    from btyd_ltv.inference import _matvec, _whitening

    h = _tree_precision()
    a = _whitening(h)
    np.testing.assert_allclose(a @ a.T, np.linalg.inv(h), rtol=1e-8, atol=1e-12)
    assert (np.count_nonzero(a, axis=1) <= 6 + 2).all()
    u = np.random.default_rng(1).normal(size=h.shape[0])
    np.testing.assert_allclose(np.asarray(_matvec(a)(u)), a @ u, rtol=1e-12, atol=1e-12)
    indefinite = np.diag([4.0, -1.0, 0.25])
    b = _whitening(indefinite)
    np.testing.assert_allclose(b @ b.T, np.diag([0.25, 1.0, 4.0]), rtol=1e-12)


def test_fit_rejects_an_unknown_warm_start(small_bgnbd_data):
    with pytest.raises(ValueError, match="warm_start must be one of"):
        fit(bgnbd, small_bgnbd_data, warm_start="laplace", **SMALL)


@pytest.fixture(scope="module", params=[True, "dense"])
def warm0(request, small_bgnbd_data):
    return fit(bgnbd, small_bgnbd_data, seed=0, warm_start=request.param, **{**SMALL, "num_samples": 300})


@pytest.fixture(scope="module")
def cold1(small_bgnbd_data):
    return fit(bgnbd, small_bgnbd_data, seed=1, **{**SMALL, "num_samples": 300})


def test_warm_start_fit_is_reproducible_and_its_lp_is_the_log_density(small_bgnbd_data, warm0):
    """Diagonal and dense warm starts: the scaled coordinates map back exactly: lp is the model's log density (with the Jacobian of the
    unconstraining transforms) at the returned draws, and the same seed gives the same draws."""
    from numpyro.infer.util import log_density

    mode = {"diag": True}.get(warm0.attrs["warm_start"], warm0.attrs["warm_start"])
    again = fit(bgnbd, small_bgnbd_data, seed=0, warm_start=mode, **{**SMALL, "num_samples": 300})
    for k in warm0.posterior.data_vars:
        np.testing.assert_array_equal(again.posterior[k].values, warm0.posterior[k].values)
    unscaled, scaled = warm0.attrs["warm_start_potentials"]  # the potential after each L-BFGS search
    assert np.isfinite(scaled) and scaled <= unscaled
    post, lp = warm0.posterior, warm0.sample_stats["lp"].values[0]
    for i in (0, 150, 299):
        params = {k: float(post[k].values[0, i]) for k in ("r", "alpha", "phi_dropout", "kappa_dropout")}
        ld, _ = log_density(bgnbd.model, (), {"data": small_bgnbd_data}, params)
        phi, kappa = params["phi_dropout"], params["kappa_dropout"]
        jac = np.log(params["r"]) + np.log(params["alpha"]) + np.log(phi * (1 - phi)) + np.log(kappa)
        np.testing.assert_allclose(float(ld) + jac, lp[i], atol=1e-6)


def test_warm_start_fit_agrees_with_the_default_fit(warm0, cold1):
    """Same posterior, different starting point and coordinates: the means agree within 5 Monte Carlo standard
    errors of their difference."""
    cold = cold1
    for k in ("r", "alpha", "a", "b"):
        mw, mc = (az.summary(f, var_names=[k], kind="stats", round_to="none") for f in (warm0, cold))
        se = np.hypot(*(float(az.mcse(f, var_names=[k])[k]) for f in (warm0, cold)))
        assert abs(float(mw["mean"].iloc[0]) - float(mc["mean"].iloc[0])) < 5 * se, k
