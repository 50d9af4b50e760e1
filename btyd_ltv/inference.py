"""One entry point to fit any model of :mod:`btyd_ltv.models`: NUTS (NumPyro) or MAP with a Laplace approximation.

The result is always an :class:`arviz.InferenceData` with ``posterior`` (dims ``chain``, ``draw``),
``sample_stats`` (NUTS only) and ``constant_data`` (the likelihood's data), and ``attrs`` recording the model,
the method and the seed. Diagnostics (R-hat, bulk/tail ESS, divergences) are checked after every NUTS fit and
reported as :class:`~btyd_ltv.errors.SamplingWarning`, never swallowed.
"""

from __future__ import annotations

import inspect
import os
import sys
import warnings
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

import btyd_ltv._jax  # noqa: F401  (float64)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)  # arviz announces its 1.0 refactor on import
    import arviz as az
import jax
import jax.flatten_util
import jax.numpy as jnp
from numpyro.infer import MCMC, NUTS
from numpyro.infer.util import constrain_fn, initialize_model, log_density

from btyd_ltv.errors import FitError, SamplingWarning

__all__ = ["fit", "find_warm_start", "WarmStart", "param_names", "Diagnostics", "diagnose", "default_chain_method",
           "enable_compilation_cache"]

RHAT_MAX = 1.01
_EXTRA_FIELDS = ("diverging", "energy", "num_steps", "accept_prob", "potential_energy", "adapt_state.step_size")
ESS_MIN = 400
WARM_STARTS = ("none", "diag", "dense")  # fit(warm_start=...); False and True mean "none" and "diag"


def enable_compilation_cache(path: str | os.PathLike | None = None) -> str:
    """Turn on JAX's persistent compilation cache so a second identical fit skips XLA compilation.

    ``path`` defaults to ``$BTYD_LTV_CACHE_DIR`` or ``~/.cache/btyd_ltv/jax``. Returns the directory used.
    """
    path = os.fspath(path or os.environ.get("BTYD_LTV_CACHE_DIR") or os.path.expanduser("~/.cache/btyd_ltv/jax"))
    os.makedirs(path, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path


def default_chain_method(num_chains: int) -> str:
    """Chain method: ``parallel`` when there is one device per chain (GPUs, or CPU with
    ``numpyro.set_host_device_count``), otherwise ``vectorized`` on accelerators and ``sequential`` on CPU.
    The CLI sets the host device count before JAX starts; see benchmarks/bench_fit.py (sequential /
    vectorized / parallel rows) for the measurements behind this choice.
    """
    if num_chains <= 1:
        return "sequential"
    if jax.local_device_count() >= num_chains:
        return "parallel"
    return "vectorized" if jax.default_backend() != "cpu" else "sequential"


@dataclass
class Diagnostics:
    """Convergence summary of a fit: worst R-hat, smallest bulk/tail ESS, divergences, the messages, the
    draws whose trajectory reached the tree-depth cap (an efficiency count, not a failure: a capped trajectory
    is a valid transition, and its cost in mixing shows in R-hat and ESS), and the sites (with their element
    index) that have the highest R-hat and the lowest bulk or tail ESS."""

    max_rhat: float
    min_ess_bulk: float
    min_ess_tail: float
    divergences: int
    messages: list[str] = field(default_factory=list)
    at_max_depth: int = 0
    rhat_site: str | None = None
    ess_site: str | None = None

    @property
    def ok(self) -> bool:
        return not self.messages


def diagnose(idata: az.InferenceData, var_names: list[str] | tuple[str, ...]) -> Diagnostics:
    """Check R-hat <= 1.01, bulk and tail ESS >= 400 and zero divergences (Vehtari et al. 2021)."""
    var_names = list(var_names)
    if idata.attrs.get("method", "nuts") != "nuts":
        return Diagnostics(np.nan, np.nan, np.nan, 0, [])
    summ = az.summary(idata, var_names=var_names, kind="diagnostics", round_to="none")
    n_chains = idata.posterior.sizes["chain"]
    max_rhat = float(summ["r_hat"].max()) if n_chains > 1 else float("nan")
    min_bulk = float(summ["ess_bulk"].min())
    min_tail = float(summ["ess_tail"].min())
    div = int(idata.sample_stats["diverging"].sum()) if "sample_stats" in idata else 0
    rhat_site = str(summ["r_hat"].fillna(np.inf).idxmax()) if n_chains > 1 else None
    ess_site = str(summ[["ess_bulk", "ess_tail"]].min(axis=1).fillna(-np.inf).idxmin())
    msgs = []
    if n_chains < 2:
        msgs.append("R-hat needs at least 2 chains: convergence was not checked; run --chains 4")
    elif not np.isfinite(max_rhat) or max_rhat > RHAT_MAX:
        msgs.append(f"R-hat {max_rhat:.3f} > {RHAT_MAX} for '{rhat_site}': chains disagree; run more warmup/draws")
    if min_bulk < ESS_MIN or min_tail < ESS_MIN:
        msgs.append(
            f"ESS bulk {min_bulk:.0f} / tail {min_tail:.0f} < {ESS_MIN} for '{ess_site}': intervals are unreliable; "
            "run more draws or chains"
        )
    if div > 0:
        msgs.append(f"{div} divergent transitions: the posterior may be biased; raise target_accept")
    depth = idata.attrs.get("max_tree_depth")
    capped = 0
    if depth is not None and "sample_stats" in idata and "n_steps" in idata.sample_stats:
        capped = int((np.asarray(idata.sample_stats["n_steps"]) >= 2 ** int(depth) - 1).sum())
    return Diagnostics(max_rhat, min_bulk, min_tail, div, msgs, capped, rhat_site, ess_site)


def _resolve(family: ModuleType | str) -> ModuleType:
    if isinstance(family, str):
        from btyd_ltv.models import get_model

        return get_model(family)
    return family


def fit(
    family: ModuleType | str,
    data: Any,
    *,
    priors: Any = None,
    method: str = "nuts",
    num_chains: int = 4,
    num_warmup: int = 1000,
    num_samples: int = 1000,
    seed: int = 0,
    chain_method: str | None = None,
    target_accept_prob: float = 0.8,
    max_tree_depth: int | tuple[int, int] = 10,
    dense_mass: bool | list[tuple[str, ...]] = True,
    progress_bar: bool | None = None,
    warn: bool = True,
    coords: dict | None = None,
    warm_start: bool | str = False,
) -> az.InferenceData:
    """Fit a model family to its data and return an :class:`arviz.InferenceData`.

    Parameters
    ----------
    family : a model module (e.g. :mod:`btyd_ltv.models.bgnbd`) or its name (``"bgnbd"``, ``"gamma_gamma"``).
    data : the family's data tuple (``family.make_data(...)``).
    priors : the family's priors dataclass; ``None`` for its defaults.
    method : ``"nuts"`` (NumPyro NUTS, Hoffman & Gelman 2014) or ``"map"`` (posterior mode by L-BFGS, with
        ``num_samples`` draws from the Laplace approximation in the unconstrained space; with flat priors the
        mode is the maximum-likelihood estimate and the Laplace sd the delta-method standard error).
    num_chains, num_warmup, num_samples, seed : sampler settings; the same seed gives the same posterior on
        the same machine.
    chain_method : ``"sequential"``, ``"vectorized"`` or ``"parallel"``; default :func:`default_chain_method`.
    max_tree_depth : NUTS stops doubling its trajectory at ``2^depth - 1`` leapfrog steps (NumPyro's default
        10; a pair ``(warmup, sampling)`` sets the two phases apart). A lower cap bounds the cost of every
        draw; a trajectory cut before its U-turn is still a valid transition (the cap is fixed in advance, so
        detailed balance holds; Stan reports reaching it as an efficiency warning), only less far-reaching, so
        the cost shows in the ESS. :func:`diagnose` counts the draws that reached the cap. ``idata.attrs``
        records the sampling phase's cap (``"max_tree_depth"``) and ``"target_accept_prob"``.
    dense_mass : adapt a dense mass matrix (the BTYD posteriors have strongly correlated parameters); a list of
        tuples of site names adapts a dense block for each tuple and a diagonal for the other sites (NumPyro's
        structured mass matrix), e.g. :func:`btyd_ltv.models.cohort_curve.mass_blocks`.
    progress_bar : default: on when stderr is a terminal.
    warn : emit :class:`~btyd_ltv.errors.SamplingWarning` for failed diagnostics.
    coords : coordinate values for the family's named posterior dimensions (e.g. ``{"feature": [...]}``).
    warm_start : NUTS only, one of :data:`WARM_STARTS` (``False`` is ``"none"``, ``True`` is ``"diag"``).
        ``"diag"``: start every chain from the result of :func:`find_warm_start` (a partial posterior mode) and
        sample in coordinates scaled by the diagonal of the Hessian there, instead of the family's starting point
        and the identity; for families whose sites have no interaction between their own elements (e.g.
        :mod:`btyd_ltv.models.cohort_curve`, where every element of a site belongs to a different group).
        ``"dense"``: sample in the coordinates that whiten the Laplace approximation ``N(z*, H^-1)`` at that point
        (full Hessian over the sites not held; its cost is one gradient per coordinate), with a diagonal mass
        matrix adapted in them. ``idata.attrs`` records ``"warm_start"`` (``"none"``, ``"diag"`` or ``"dense"``)
        and, for a warm start, ``"warm_start_iterations"`` (L-BFGS iterations of both searches) and
        ``"warm_start_potentials"`` (the potential after the unscaled and after the curvature-scaled search).
    """
    module = _resolve(family)
    model = module.model
    dims, all_coords = module.posterior_dims(data) if hasattr(module, "posterior_dims") else ({}, {})
    all_coords.update(coords or {})
    model_kwargs = {"data": data, "priors": priors}
    key = jax.random.PRNGKey(seed)
    if method == "map":
        idata = _fit_map(model, model_kwargs, key, num_samples, dims, all_coords)
    elif method == "nuts":
        if getattr(priors, "kind", "default") == "flat":
            raise ValueError(
                "flat priors make the posterior improper; use them with method='map' (maximum likelihood) only"
            )
        if progress_bar is None:
            progress_bar = sys.stderr.isatty()
        chain_method = chain_method or default_chain_method(num_chains)
        init = _init_strategy(module, data, priors)
        if isinstance(warm_start, bool):
            warm_start = "diag" if warm_start else "none"
        if warm_start not in WARM_STARTS:
            raise ValueError(f"warm_start must be one of {WARM_STARTS} (or a bool), got {warm_start!r}")
        if warm_start != "none":
            fixed = module.warm_start_fixed(data) if hasattr(module, "warm_start_fixed") else ()
            start = find_warm_start(model, model_kwargs, jax.random.fold_in(key, 2), init, fixed,
                                    dense=warm_start == "dense")
            samples, extra = _run_scaled(start, model, model_kwargs, key, dense_mass, target_accept_prob,
                                         num_chains, num_warmup, num_samples, chain_method, progress_bar,
                                         max_tree_depth)
        else:
            kernel = NUTS(model, target_accept_prob=target_accept_prob, dense_mass=dense_mass,
                          max_tree_depth=max_tree_depth, **({"init_strategy": init} if init is not None else {}))
            mcmc = MCMC(kernel, num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
                        chain_method=chain_method, progress_bar=progress_bar)
            mcmc.run(key, extra_fields=_EXTRA_FIELDS, **model_kwargs)
            samples, extra = mcmc.get_samples(group_by_chain=True), mcmc.get_extra_fields(group_by_chain=True)
        idata = _to_idata(samples, extra, dims, all_coords)
        idata.attrs["chain_method"] = chain_method
        idata.attrs["max_tree_depth"] = int(np.ravel(max_tree_depth)[-1])  # the sampling phase's cap
        idata.attrs["target_accept_prob"] = float(target_accept_prob)
        idata.attrs["warm_start"] = warm_start
        if warm_start != "none":
            idata.attrs["warm_start_iterations"] = start.iterations
            idata.attrs["warm_start_potentials"] = list(start.stage_potentials)  # after each L-BFGS search
    else:
        raise ValueError(f"method must be 'nuts' or 'map', got {method!r}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # arviz: "default dims ... added automatically"
        idata.add_groups(constant_data=_constant_data(data))
    idata.attrs.update(
        {
            "model": module.__name__.rsplit(".", 1)[-1],
            "method": method,
            "seed": int(seed),
            "num_chains": int(num_chains if method == "nuts" else 1),
            "num_warmup": int(num_warmup if method == "nuts" else 0),
            "num_samples": int(num_samples),
            "priors": getattr(priors, "kind", "default") if priors is not None else "default",
        }
    )
    if method == "nuts" and warn:
        diag = diagnose(idata, param_names(module, data))
        for msg in diag.messages:
            warnings.warn(msg, SamplingWarning, stacklevel=2)
    return idata


def _run_scaled(start, model, model_kwargs, key, dense_mass, target_accept_prob, num_chains, num_warmup,
                num_samples, chain_method, progress_bar, max_tree_depth) -> tuple[dict, dict]:
    """NUTS in the coordinates ``u`` of a :class:`WarmStart` (:meth:`WarmStart.affine_map`), mapped back to the
    model's sites. The map is affine with fixed coefficients, so the posterior is unchanged; it puts every
    coordinate on unit scale, where NumPyro's (Stan's) mass-matrix regularisation, which adds
    ``1e-3 * 5 / (n + 5)`` to each estimated variance, is negligible: without it parameters pinned to sd ~1e-3
    get variances inflated 5-50x and the step size collapses. With a dense Hessian the map also removes the
    posterior correlations of the Laplace approximation, and NUTS adapts a diagonal mass matrix in ``u``."""
    to_z, u0_single = start.affine_map()
    potential = start.potential_fn
    if start.hessian is not None:
        dense_mass = False  # the Laplace covariance already decorrelates u; site blocks do not apply to u
    kernel = NUTS(potential_fn=lambda u: potential(to_z(u)), target_accept_prob=target_accept_prob,
                  max_tree_depth=max_tree_depth,
                  dense_mass=list(dense_mass) if isinstance(dense_mass, (list, tuple)) else dense_mass)
    mcmc = MCMC(kernel, num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
                chain_method=chain_method, progress_bar=progress_bar)
    u0 = {k: jnp.zeros((num_chains,) + jnp.shape(v)) if num_chains > 1 else jnp.zeros_like(v)
          for k, v in u0_single.items()}
    mcmc.run(key, init_params=u0, extra_fields=_EXTRA_FIELDS)
    u = mcmc.get_samples(group_by_chain=True)
    constrain = jax.jit(jax.vmap(
        lambda ui: constrain_fn(model, (), model_kwargs, to_z(ui), return_deterministic=True)))
    per_chain = [constrain({k: v[c] for k, v in u.items()}) for c in range(num_chains)]
    samples = {k: np.stack([np.asarray(pc[k]) for pc in per_chain]) for k in per_chain[0]}
    return samples, mcmc.get_extra_fields(group_by_chain=True)


_DENSE = "_laplace_u"  # the one site of the decorrelated coordinates in a dense warm start


@dataclass
class WarmStart:
    """A starting point ``z`` (unconstrained, per site) and the diagonal ``h`` of the potential's Hessian there;
    with ``dense=True`` also the full Hessian ``H`` over the sites that were not held (``dense_sites``, flattened
    in sorted order)."""

    z: dict
    hessian_diagonal: dict
    iterations: int
    stage_potentials: tuple  # the potential after the unscaled and after the curvature-scaled search
    potential_fn: Any = None
    hessian: np.ndarray | None = None
    dense_sites: tuple = ()

    @property
    def potential(self) -> float:
        """The potential at ``z``: that after the last search."""
        return self.stage_potentials[-1]

    def scales(self) -> dict:
        """``h^-1/2`` per element (1 where ``h <= 0``), clipped to ``[1e-6, 10]``."""
        return {k: _inverse_sqrt(h) for k, h in self.hessian_diagonal.items()}

    def affine_map(self):
        """``(to_z, u0)``: the map from sampler coordinates ``u`` to the model's unconstrained sites, and ``u`` at
        the start (zeros). Diagonal: ``z = z* + h^-1/2 u`` per site. Dense: the sites in ``dense_sites`` move
        together as ``z = z* + A u`` with ``A A^T = H^-1`` (:func:`_whitening`), so ``u`` has identity covariance
        under the Laplace approximation; the other sites stay diagonal."""
        z_star = self.z
        scale = {k: jnp.asarray(v) for k, v in self.scales().items()}
        diag_sites = [k for k in z_star if k not in self.dense_sites]
        u0 = {k: jnp.zeros_like(z_star[k]) for k in diag_sites}
        if self.hessian is None:
            return (lambda u: {k: z_star[k] + scale[k] * u[k] for k in z_star}), u0
        flat_star, unravel = jax.flatten_util.ravel_pytree({k: z_star[k] for k in self.dense_sites})
        matvec = _matvec(_whitening(self.hessian))

        def to_z(u):
            out = {k: z_star[k] + scale[k] * u[k] for k in diag_sites}
            out.update(unravel(flat_star + matvec(u[_DENSE])))
            return out

        u0[_DENSE] = jnp.zeros_like(flat_star)
        return to_z, u0


def _whitening(hessian: np.ndarray) -> np.ndarray:
    """A matrix ``A`` with ``A A^T = H^-1``. Positive definite ``H``: ``A = P^T L^-T`` from the Cholesky factor of
    ``H`` with its coordinates ordered by their number of non-zero Hessian entries (the elimination order of a
    hierarchical model: cohorts, then their groups, then what every cell shares), which keeps ``A`` as sparse as
    the model's tree; otherwise ``A = Q |Lambda|^-1/2`` from ``H = Q Lambda Q^T`` (eigenvalues floored at
    ``1e-12`` of the largest, scales clipped to ``[1e-6, 10]``)."""
    import scipy.linalg

    h = 0.5 * (hessian + hessian.T)
    order = np.argsort((h != 0).sum(axis=1), kind="stable")
    try:
        chol = np.linalg.cholesky(h[np.ix_(order, order)])
    except np.linalg.LinAlgError:
        w, q = np.linalg.eigh(h)
        w = np.maximum(np.abs(w), 1e-12 * np.abs(w).max())
        return q * (1.0 / np.sqrt(w)).clip(1e-6, 10.0)
    a = np.empty_like(h)
    a[order] = scipy.linalg.solve_triangular(chol, np.eye(h.shape[0]), lower=True).T
    return a


def _matvec(a: np.ndarray):
    """``u -> A u`` as a JAX function: a gather and a segment sum over the non-zeros of ``A`` when fewer than a
    tenth of its entries are non-zero, a dense product otherwise."""
    rows, cols = np.nonzero(a)
    if rows.size > 0.1 * a.size:
        dense = jnp.asarray(a)
        return lambda u: dense @ u
    vals, rows, cols, n = jnp.asarray(a[rows, cols]), jnp.asarray(rows), jnp.asarray(cols), a.shape[0]
    return lambda u: jax.ops.segment_sum(vals * u[cols], rows, num_segments=n, indices_are_sorted=True)


def _hessian_diagonal(grad, z: dict, sites, eps: float = 1e-4) -> dict:
    """The diagonal of the potential's Hessian at ``z`` for each site in ``sites``: one probe per site, by central
    differences of the gradient (exact where a site's elements do not interact with each other)."""
    out = {}
    for k in sorted(sites):
        shift = {j: (jnp.full_like(v, eps) if j == k else jnp.zeros_like(v)) for j, v in z.items()}
        up = grad(jax.tree.map(jnp.add, z, shift))[k]
        down = grad(jax.tree.map(jnp.subtract, z, shift))[k]
        out[k] = np.asarray((up - down) / (2.0 * eps), dtype=np.float64)
    return out


def _inverse_sqrt(h: np.ndarray) -> np.ndarray:
    """``h^-1/2`` per element (1 where ``h <= 0``), clipped to ``[1e-6, 10]``: a curvature scale."""
    return np.where(h > 0, 1.0 / np.sqrt(np.where(h > 0, h, 1.0)), 1.0).clip(1e-6, 10.0)


def find_warm_start(model, model_kwargs: dict, key, init_strategy=None, fixed: tuple[str, ...] = (),
                    max_iter: int = 300, dense: bool = False, chunk: int = 32) -> WarmStart:
    """Starting point and mass-matrix scales for NUTS: the mode of the potential (negative log density in the
    unconstrained space) over every site but ``fixed``, by L-BFGS from the family's starting point (at most
    ``max_iter`` iterations), and there the diagonal of the Hessian, one Hessian-vector product per site by
    central differences of the gradient. With ``dense=True`` also the full Hessian over the sites not held, by
    forward-over-reverse Hessian-vector products, ``chunk`` unit vectors at a time (one gradient's cost each:
    2,000 coordinates of a 365k-cell cohort-curve model take about a minute); its diagonal stands in for those
    sites' probes, so only the held sites are probed.

    The search runs twice, each time for at most ``max_iter`` iterations: first in the model's coordinates, then
    from where it stopped in coordinates scaled by the Hessian diagonal there (a diagonal preconditioner;
    Nocedal & Wright 2006, sec. 7.2). Where curvatures span six orders of magnitude, as on long cohort curves,
    the first search stops at ``max_iter`` far from the mode in the best-determined parameters, and NUTS's warmup
    has to cover that distance first; the scaled search closes it in a few iterations. It does not start scaled:
    far from the mode the curvature misleads. ``stage_potentials`` holds the potential after each search.

    One probe per site gives the exact diagonal when a site's elements do not interact with each other (the
    cross terms of one site are zero), as in hierarchical models whose elements belong to different groups.
    Holding ``fixed`` (e.g. between-group sds) keeps the objective bounded: the joint density of a centred
    hierarchy grows without bound as an sd goes to zero. Without it NUTS starts with the identity mass matrix,
    and on curves whose parameters are pinned to 1e-3 its first warmup window runs at the maximum tree depth.
    """
    import scipy.optimize

    info = initialize_model(key, model, model_kwargs=model_kwargs,
                            **({"init_strategy": init_strategy} if init_strategy is not None else {}))
    z0 = info.param_info.z
    held = {k: v for k, v in z0.items() if k in fixed}
    free0 = {k: v for k, v in z0.items() if k not in fixed}
    flat0, unravel = jax.flatten_util.ravel_pytree(free0)
    potential = info.potential_fn
    grad = jax.jit(jax.grad(potential))
    value_and_grad = jax.jit(jax.value_and_grad(lambda u: potential({**held, **unravel(u)})))
    x = np.asarray(flat0, dtype=np.float64)
    scale = np.ones_like(x)
    iterations, fval, stages = 0, np.inf, []
    for stage in range(2):  # unscaled, then scaled by the Hessian diagonal where the first search stopped
        if stage:
            h = _hessian_diagonal(grad, {**z0, **unravel(jnp.asarray(x, dtype=flat0.dtype))}, free0)
            scale = _inverse_sqrt(np.asarray(jax.flatten_util.ravel_pytree(h)[0], dtype=np.float64))
        origin = x.copy()

        def fun(v, origin=origin, scale=scale):  # x = origin + scale * v
            f, g = value_and_grad(jnp.asarray(origin + scale * v, dtype=flat0.dtype))
            return float(f), np.asarray(g, dtype=np.float64) * scale

        res = scipy.optimize.minimize(fun, np.zeros_like(x), jac=True, method="L-BFGS-B",
                                      options={"maxiter": int(max_iter)})
        if np.isfinite(res.fun) and np.all(np.isfinite(res.x)) and res.fun <= fval:
            x, fval = origin + scale * res.x, float(res.fun)
        iterations += int(res.nit)
        stages.append(fval)
    z = {**z0, **unravel(jnp.asarray(x, dtype=flat0.dtype))}
    hess, dense_h, dense_sites = {}, None, ()
    if dense:  # the full Hessian over the sites not held (same flattening as the mode); its diagonal is theirs
        dense_sites = tuple(sorted(k for k in z if k not in fixed))
        g = jax.grad(lambda u: potential({**held, **unravel(u)}))
        u_star = jnp.asarray(x, dtype=flat0.dtype)
        hvp = jax.jit(jax.vmap(lambda v: jax.jvp(g, (u_star,), (v,))[1]))
        eye = jnp.eye(u_star.shape[0], dtype=u_star.dtype)
        rows = [np.asarray(hvp(eye[i:i + chunk])) for i in range(0, u_star.shape[0], chunk)]
        dense_h = np.concatenate(rows).astype(np.float64)
        hess = {k: np.asarray(v, dtype=np.float64) for k, v in unravel(jnp.asarray(np.diag(dense_h))).items()}
    hess.update(_hessian_diagonal(grad, z, set(z) - set(hess)))
    return WarmStart(z=z, hessian_diagonal=hess, iterations=iterations, stage_potentials=tuple(stages),
                     potential_fn=potential, hessian=dense_h, dense_sites=dense_sites)


def _init_strategy(module: ModuleType, data: Any, priors: Any):
    """The family's ``init_strategy`` hook, called with the data and priors when it takes them."""
    hook = getattr(module, "init_strategy", None)
    if hook is None:
        return None
    params = inspect.signature(hook).parameters
    return hook(data, priors) if len(params) >= 2 else hook()


def param_names(family: ModuleType | str, data: Any) -> list[str]:
    """The posterior variables a fit of ``family`` on ``data`` has (``module.param_names(data)`` when the
    family's variables depend on the data, e.g. ZILN group terms, else ``module.PARAM_NAMES``)."""
    module = _resolve(family)
    if hasattr(module, "param_names"):
        return list(module.param_names(data))
    return list(module.PARAM_NAMES)


def _constant_data(data):
    """The likelihood's data tuple as an xarray Dataset, each array on its own dimension, scalars as attrs."""
    import xarray as xr

    fields = {}
    for k, v in data._asdict().items():
        if v is None:  # an optional field that is off
            continue
        if isinstance(v, tuple) and all(isinstance(x, str) for x in v):
            fields[k] = ",".join(v)  # e.g. the names of a family's hierarchy levels
        elif isinstance(v, tuple):
            fields.update({f"{k}_{i}": x for i, x in enumerate(v)})  # ragged per-level arrays
        else:
            fields[k] = v
    arrays = {
        k: ((f"{k}_dim",) if np.ndim(v) == 1 else tuple(f"{k}_dim_{i}" for i in range(np.ndim(v))), np.asarray(v))
        for k, v in fields.items() if np.ndim(v) > 0
    }
    attrs = {k: (v if isinstance(v, str) else float(v)) for k, v in fields.items() if np.ndim(v) == 0}
    return xr.Dataset(arrays, attrs=attrs)


def _to_idata(samples: dict, extra: dict | None = None, dims: dict | None = None,
              coords: dict | None = None) -> az.InferenceData:
    posterior = {k: np.asarray(v) for k, v in samples.items()}
    stats = None
    if extra:
        stats = {
            "diverging": np.asarray(extra["diverging"]),
            "energy": np.asarray(extra["energy"]),
            "lp": -np.asarray(extra["potential_energy"]),
            "n_steps": np.asarray(extra["num_steps"]),
            "acceptance_rate": np.asarray(extra["accept_prob"]),
            "step_size": np.asarray(extra["adapt_state.step_size"]),
        }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "default dims chain and draw will be added"
        return az.from_dict(posterior=posterior, sample_stats=stats, dims=dims or None, coords=coords or None)


def _fit_map(model, model_kwargs: dict, key, num_samples: int, dims=None, coords=None) -> az.InferenceData:
    """Posterior mode in the constrained space (no Jacobian) found in unconstrained coordinates, then the
    Laplace approximation ``u ~ N(u*, H^-1)`` with ``H`` the Hessian of the negative log density in ``u``."""
    import scipy.optimize

    info = initialize_model(key, model, model_kwargs=model_kwargs, init_strategy=_init_median())
    u0 = info.param_info.z
    flat0, unravel = jax.flatten_util.ravel_pytree(u0)

    def neg_log_density(flat_u):
        params = constrain_fn(model, (), model_kwargs, unravel(flat_u))
        return -log_density(model, (), model_kwargs, params)[0]

    value_and_grad = jax.jit(jax.value_and_grad(neg_log_density))

    def fun(u):
        v, g = value_and_grad(jnp.asarray(u))
        return float(v), np.asarray(g, dtype=np.float64)

    res = scipy.optimize.minimize(fun, np.asarray(flat0), jac=True, method="L-BFGS-B",
                                  options={"maxiter": 10_000, "ftol": 1e-15, "gtol": 1e-9})
    if not np.all(np.isfinite(res.x)) or not np.isfinite(res.fun):
        raise FitError(f"MAP optimisation failed ({res.message}); the data may be too few to identify the model")
    # L-BFGS-B may stop "abnormally" when gtol is unreachable in floating point at the optimum itself.
    converged = bool(res.success) or float(np.max(np.abs(res.jac))) < 1e-6 * max(1.0, abs(float(res.fun)))
    hess = np.asarray(jax.hessian(neg_log_density)(jnp.asarray(res.x)))
    try:
        cov = np.linalg.inv(hess)
        chol = np.linalg.cholesky(0.5 * (cov + cov.T))
    except np.linalg.LinAlgError as err:
        raise FitError(
            "MAP: the Hessian at the mode is not positive definite, so the Laplace approximation is undefined; "
            "use NUTS"
        ) from err
    eps = np.asarray(jax.random.normal(jax.random.fold_in(key, 1), (num_samples, res.x.size)), dtype=np.float64)
    draws_u = res.x[None, :] + eps @ chol.T
    constrain = jax.jit(
        jax.vmap(lambda u: constrain_fn(model, (), model_kwargs, unravel(u), return_deterministic=True))
    )
    draws = constrain(jnp.asarray(draws_u))
    mode = constrain_fn(model, (), model_kwargs, unravel(jnp.asarray(res.x)), return_deterministic=True)
    idata = _to_idata({k: np.asarray(v)[None, ...] for k, v in draws.items()}, None, dims, coords)
    idata.attrs["map_converged"] = int(converged)
    idata.attrs["map_iterations"] = int(res.nit)
    for k, v in mode.items():
        if np.ndim(v) == 0:
            idata.attrs[f"map_{k}"] = float(v)
    return idata


def _init_median():
    from numpyro.infer.initialization import init_to_median

    return init_to_median(num_samples=15)
