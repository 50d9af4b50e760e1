"""Rolling-origin backtest of cohort LTV curve forecasts, and four classical baselines.

A *cohort curve forecaster* sees a cohort table cut at a calendar date (every row dated on or before the cutoff)
and predicts, for some young cohorts, their cumulative LTV per install ``L_c(H) = sum_{a <= H} revenue_c(a) /
installs_c`` at later checkpoint ages ``H``. The backtest replays history (Tashman 2000, "Out-of-sample tests of
forecasting accuracy: an analysis and review", IJF 16(4), the *rolling origin*): for every cutoff at which some
cohort is exactly ``k`` periods old, it cuts the table, asks each forecaster once for all such cohorts, and
compares the forecasts with what the full table later showed.

Calendar. Each cohort has an acquisition period index ``acquired_c`` (a whole number of periods); the cell
``(c, age)`` is dated ``acquired_c + age``, so the table cut at ``t`` keeps the rows with ``acquired_c + age <= t``
(older cohorts truncated, cohorts acquired after ``t`` dropped). See :func:`acquisition_period`.

Forecast interface. A forecaster is any callable ``f(history, cohorts, ages) -> CurveForecast``; ``history`` is
the cut table (all cohorts, same columns as the input), ``cohorts`` the target cohorts (each observed to its own
age ``k_c``) and ``ages`` the checkpoints. For a checkpoint ``H <= k_c`` the forecast should be the observed
value; the backtest only scores ``H > k_c``.

Baselines (:func:`multiplier`, :func:`chain_ladder`, :func:`regression`, :func:`power_law`). Each is fit on
``history`` only; a cohort is *mature* for checkpoint ``H`` when the history already shows it at age ``H``. Every
baseline forecast is ``>= L_c(k_c)``: cumulative LTV never falls.

References
----------
Mack (1993), "Distribution-free calculation of the standard error of chain ladder reserve estimates", ASTIN
Bulletin 23(2), 213-225. Mack (1999), "The standard error of chain ladder reserve estimates: recursive
calculation and inclusion of a tail factor", ASTIN Bulletin 29(2), 361-366. Gesmann et al., R package
``ChainLadder`` (``MackChainLadder``). Taylor & Ashe (1983), "Second moments of estimates of outstanding
claims", J. Econometrics 23(1). Gneiting & Raftery (2007), JASA 102: CRPS.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from btyd_ltv.data.cohorts import CohortColumns, validate_cohort_table
from btyd_ltv.errors import DataValidationError
from btyd_ltv.metrics import crps_samples, interval_coverage, report_markdown

__all__ = [
    "DEFAULT_CHECKPOINTS",
    "DEFAULT_KS",
    "PERIODS",
    "BacktestResult",
    "ChainLadder",
    "CurveForecast",
    "Forecaster",
    "MackChainLadder",
    "Multiplier",
    "PowerLaw",
    "Regression",
    "acquisition_calendar",
    "acquisition_period",
    "baselines",
    "chain_ladder",
    "history_bin_edges",
    "mack_chain_ladder",
    "multiplier",
    "power_law",
    "regression",
    "rolling_origin",
    "score_markdown",
    "truncate",
]

#: Calendar periods: ``"D"`` days, ``"W"`` weeks (7 days), ``"M"`` calendar months.
PERIODS = ("D", "W", "M")

#: Default forecast origins: cohort ages (in periods) at which the forecast is made.
DEFAULT_KS = (3, 7, 14, 30)

#: Default checkpoint ages per period, truncated by :func:`rolling_origin` to the oldest age in the table.
DEFAULT_CHECKPOINTS: dict[str, tuple[int, ...]] = {
    "D": (7, 14, 30, 60, 90, 180, 365),
    "W": (4, 8, 13, 26, 52, 78, 104),
    "M": (1, 2, 3, 6, 12, 24, 36),
}

DateLike = str | pd.Timestamp | _dt.date | np.datetime64


# ============================================================================================== calendar time
@dataclass(frozen=True)
class _Calendar:
    """Acquisition period index of each row, and (for date-based acquisition) the date of period 0."""

    acquired: np.ndarray  # int64, one per row of the table it was built on
    origin: np.datetime64 | None
    period: str

    def index_of(self, cutoff: Any) -> int:
        """Period index of a cutoff: an integer as it is, a date (date-based calendars only) -> its period."""
        if isinstance(cutoff, (bool, np.bool_)):
            raise DataValidationError(f"cutoff {cutoff!r} is a boolean; pass a period index or a date")
        if isinstance(cutoff, (int, np.integer)):
            return int(cutoff)
        if isinstance(cutoff, (float, np.floating)) and float(cutoff).is_integer():
            return int(cutoff)
        if self.origin is None:
            raise DataValidationError(
                f"cutoff {cutoff!r} is not a whole period index; the acquisition periods are numbers, so cutoffs "
                "must be numbers on the same scale"
            )
        try:
            day = pd.Timestamp(cutoff).to_datetime64().astype("datetime64[D]")
        except (ValueError, TypeError) as exc:
            raise DataValidationError(
                f"cutoff {cutoff!r} is neither a period index nor a date ({exc}); pass e.g. 12 or '1997-03-31'"
            ) from exc
        return int(_period_index(np.array([day]), self.origin, self.period)[0])

    def date_of(self, index: np.ndarray) -> np.ndarray | None:
        """ISO date of the first day of each period index, or ``None`` without dates."""
        if self.origin is None:
            return None
        index = np.asarray(index, dtype=np.int64)
        if self.period == "M":
            days = self.origin.astype("datetime64[M]") + index
            return np.datetime_as_string(days.astype("datetime64[D]"), unit="D")
        step = 7 if self.period == "W" else 1
        return np.datetime_as_string(self.origin + index * step, unit="D")


def _period_index(days: np.ndarray, origin: np.datetime64, period: str) -> np.ndarray:
    """Whole periods from ``origin`` to each day: days, ``floor(days / 7)`` or calendar-month difference."""
    if period == "M":
        return days.astype("datetime64[M]").astype(np.int64) - origin.astype("datetime64[M]").astype(np.int64)
    delta = (days - origin).astype(np.int64)
    return np.floor_divide(delta, 7) if period == "W" else delta


def _check_period(period: str) -> None:
    if period not in PERIODS:
        raise DataValidationError(
            f"period {period!r} is not one of {list(PERIODS)}; use 'D' (days), 'W' (weeks of 7 days) or 'M' "
            "(calendar months), the unit of the age column"
        )


def _parse_days(values: Any) -> np.ndarray | None:
    """``values`` as ``datetime64[D]`` if every entry is a date (datetime dtype or ISO date strings), else None."""
    s = pd.Series(values)
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        parsed = s
    elif pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
        return None
    else:
        parsed = pd.to_datetime(s.astype(str), format="ISO8601", errors="coerce")
    if parsed.isna().any():
        return None
    return parsed.to_numpy().astype("datetime64[D]")


def _calendar(
    table: pd.DataFrame,
    acquired: str | Sequence[int] | np.ndarray | None,
    period: str,
    columns: CohortColumns,
    origin: DateLike | None = None,
) -> _Calendar:
    """Acquisition period index per row of ``table`` (see :func:`acquisition_period`)."""
    _check_period(period)
    n = len(table)
    if acquired is None:
        ids = table[columns.cohort]
        days = _parse_days(ids)
        if days is None:
            bad = pd.to_datetime(ids.astype(str), format="ISO8601", errors="coerce").isna().to_numpy()
            pos = int(np.argmax(bad))
            raise DataValidationError(
                f"column {columns.cohort!r}: cohort id {ids.iloc[pos]!r} (row {pos}) is not an ISO date, so the "
                "acquisition period of each cohort is unknown; pass acquired='<column>' (CLI: --acquired-col) naming "
                "a column with the acquisition period index or date of each cohort (e.g. acquired_day)"
            )
        source = f"cohort ids ({columns.cohort!r})"
    elif isinstance(acquired, str):
        if acquired not in table.columns:
            raise DataValidationError(
                f"acquired column {acquired!r} is missing from the cohort table (columns: "
                f"{list(map(str, table.columns))}); name the column holding each cohort's acquisition period index "
                "or date, or pass acquired=None when the cohort ids are ISO dates"
            )
        col = table[acquired]
        days = _parse_days(col)
        source = f"column {acquired!r}"
        if days is None:
            values = _whole_numbers(col.to_numpy(), f"column {acquired!r}")
    else:
        values = _whole_numbers(np.asarray(acquired), "acquired")
        if values.shape != (n,):
            raise DataValidationError(
                f"acquired has {values.size} entries but the cohort table has {n} rows; pass one acquisition "
                "period index per row, or a column name"
            )
        days = None
        source = "acquired"

    if days is not None:
        origin = days.min() if origin is None else pd.Timestamp(origin).to_datetime64().astype("datetime64[D]")
        if period == "W" and np.any((days - origin).astype(np.int64) % 7):
            pos = int(np.argmax((days - origin).astype(np.int64) % 7 != 0))
            raise DataValidationError(
                f"{source}: date {np.datetime_as_string(days[pos])} (row {pos}) is not a whole number of weeks after "
                f"the calendar's first date {np.datetime_as_string(origin)}; with period='W' cohorts must be weekly "
                "(or pass period='D' when ages count days)"
            )
        index = _period_index(days, origin, period)
    else:
        origin, index = None, values

    codes = pd.factorize(table[columns.cohort])[0]
    lo = np.full(codes.max() + 1, np.iinfo(np.int64).max)
    hi = np.full(codes.max() + 1, np.iinfo(np.int64).min)
    np.minimum.at(lo, codes, index)
    np.maximum.at(hi, codes, index)
    if np.any(lo != hi):
        pos = int(np.argmax((lo != hi)[codes]))
        raise DataValidationError(
            f"{source}: cohort {table[columns.cohort].iloc[pos]!r} has more than one acquisition period "
            f"({lo[codes[pos]]} and {hi[codes[pos]]}); the acquisition period describes the whole cohort"
        )
    return _Calendar(acquired=index.astype(np.int64), origin=origin, period=period)


def _whole_numbers(values: np.ndarray, name: str) -> np.ndarray:
    if values.dtype == bool or not np.issubdtype(values.dtype, np.number):
        raise DataValidationError(
            f"{name} holds {values.dtype} values that are neither numbers nor ISO dates; pass whole period "
            "indices (e.g. days since launch) or dates"
        )
    v = values.astype(np.float64)
    bad = ~np.isfinite(v) | (v != np.round(v))
    if bad.any():
        pos = int(np.argmax(bad))
        raise DataValidationError(f"{name}: value {values[pos]!r} at row {pos} is not a whole period index")
    return v.astype(np.int64)


def acquisition_period(
    table: pd.DataFrame,
    acquired: str | Sequence[int] | np.ndarray | None = None,
    *,
    period: str = "D",
    columns: CohortColumns = CohortColumns(),
) -> np.ndarray:
    """Acquisition period index of the cohort of each row of ``table`` (int64, by position).

    ``acquired`` names a column (or gives one value per row) holding either whole numbers (a period index such as
    ``acquired_day``, used as is) or dates; ``None`` parses the cohort ids as ISO dates (as in ``cdnow-weekly``,
    whose ids are the Monday of each week). Dates become ``(date - first date) / period``: days for ``"D"``,
    ``days / 7`` for ``"W"`` (dates must be whole weeks apart) and calendar-month differences for ``"M"``. The
    cell ``(c, age)`` is then dated ``acquired_c + age``. Raises :class:`DataValidationError` for a missing
    column, non-date ids without ``acquired``, or an index that differs within a cohort.
    """
    return _calendar(table, acquired, period, columns).acquired


def acquisition_calendar(
    table: pd.DataFrame,
    acquired: str | Sequence[int] | np.ndarray | None = None,
    *,
    period: str = "D",
    columns: CohortColumns = CohortColumns(),
    origin: DateLike | None = None,
) -> tuple[np.ndarray, str | None]:
    """:func:`acquisition_period` with its calendar's first date: ``(index per row, ISO date of period 0)``, the
    date ``None`` for whole-number acquisition periods (used as they are). ``origin`` fixes period 0 of a
    date-based calendar (dates before it get negative indices), so a later table can be put on the calendar of
    an earlier fit."""
    cal = _calendar(table, acquired, period, columns, origin)
    return cal.acquired, None if cal.origin is None else str(np.datetime_as_string(cal.origin, unit="D"))


def truncate(
    table: pd.DataFrame,
    cutoff: int | DateLike,
    acquired: str | Sequence[int] | np.ndarray | None = None,
    *,
    period: str = "D",
    columns: CohortColumns = CohortColumns(),
) -> pd.DataFrame:
    """The cohort table as it looked at the end of period ``cutoff``: rows with ``acquired_c + age <= cutoff``.

    Older cohorts are truncated to ages ``0..cutoff - acquired_c``; cohorts acquired after ``cutoff`` are dropped.
    ``cutoff`` is a period index on the scale of :func:`acquisition_period`, or a date when the acquisition
    periods come from dates (the period holding that date). Returns the validated rows (see
    :func:`~btyd_ltv.data.cohorts.validate_cohort_table`), sorted by cohort and age with a fresh index; an empty
    table when nothing was observed by ``cutoff``.
    """
    table = validate_cohort_table(table, columns)
    cal = _calendar(table, acquired, period, columns)
    t = cal.index_of(cutoff)
    keep = cal.acquired + table[columns.age].to_numpy() <= t
    return table.loc[keep].reset_index(drop=True)


# ======================================================================================== forecast interface
@dataclass
class CurveForecast:
    """Forecast cumulative LTV per install of some cohorts at some checkpoint ages.

    ``mean[c, a]`` is the point forecast of ``L_c(ages[a])`` and ``samples[c, a, :]`` (optional) draws from its
    predictive distribution; point methods leave ``samples=None``, and a cell whose draws are all ``NaN`` has a
    point forecast only (e.g. too few mature cohorts for an interval).
    """

    cohorts: list[str]
    ages: np.ndarray
    mean: np.ndarray
    samples: np.ndarray | None = None


#: A forecaster: ``f(history, cohorts, ages) -> CurveForecast``.
Forecaster = Callable[[pd.DataFrame, Sequence[str], Sequence[int]], CurveForecast]


def _check_forecast(name: str, fc: Any, cohorts: list[str], ages: np.ndarray) -> None:
    """Raise :class:`DataValidationError` naming forecaster ``name`` unless ``fc`` is a well-formed forecast."""
    where = f"forecaster {name!r}"
    if not isinstance(fc, CurveForecast):
        raise DataValidationError(f"{where} returned {type(fc).__name__}, not a CurveForecast")
    got = [str(c) for c in fc.cohorts]
    if got != cohorts:
        diff = next((i for i, (a, b) in enumerate(zip(got, cohorts)) if a != b), min(len(got), len(cohorts)))
        raise DataValidationError(
            f"{where} returned cohorts that differ from the {len(cohorts)} requested at position {diff} "
            f"(got {got[diff] if diff < len(got) else '<none>'!r}, expected "
            f"{cohorts[diff] if diff < len(cohorts) else '<none>'!r}); return the cohorts in the order asked"
        )
    if not np.array_equal(np.asarray(fc.ages).astype(np.int64), ages):
        raise DataValidationError(f"{where} returned ages {list(np.asarray(fc.ages))}, expected {list(ages)}")
    shape = (len(cohorts), ages.size)
    for label, arr, want in (("mean", fc.mean, shape), ("samples", fc.samples, None)):
        if arr is None:
            if label == "mean":
                raise DataValidationError(f"{where} returned no mean")
            continue
        arr = np.asarray(arr, dtype=np.float64)
        if want is None:
            if arr.ndim != 3 or arr.shape[:2] != shape or arr.shape[2] < 1:
                raise DataValidationError(
                    f"{where}: samples have shape {arr.shape}, expected (cohorts, ages, draws) = {shape + ('S',)}"
                )
        elif arr.shape != want:
            raise DataValidationError(f"{where}: mean has shape {arr.shape}, expected (cohorts, ages) = {want}")
        if label == "samples":  # a cell may be all-NaN: no predictive distribution there (point forecast only)
            empty = np.isnan(arr).all(axis=2, keepdims=True)
            arr = np.where(empty, 0.0, arr)
        bad = ~np.isfinite(arr) | (arr < 0)
        if bad.any():
            idx = np.unravel_index(int(np.argmax(bad)), arr.shape)
            raise DataValidationError(
                f"{where}: {label} value {arr[idx]} for cohort {cohorts[idx[0]]!r} at age {int(ages[idx[1]])} is "
                f"{'not finite' if not np.isfinite(arr[idx]) else 'negative'}; LTV forecasts must be finite and >= 0"
            )


# ===================================================================================== chain ladder (Mack)
@dataclass(frozen=True)
class MackChainLadder:
    """Chain ladder projection of a cumulative triangle with Mack (1993) standard errors.

    Ages are 0-based columns ``j = 0..J-1``; ``factors[j]`` develops age ``j`` to ``j + 1``. ``full`` is the
    triangle completed by the chain ladder (observed cells unchanged); ``process_se``, ``parameter_se`` and
    ``se = sqrt(process_se^2 + parameter_se^2)`` are the standard errors of each projected cell (0 where
    observed); ``total_se[j]`` is the standard error of the sum over origins of the projected cells at age ``j``.
    """

    triangle: np.ndarray
    latest_age: np.ndarray
    factors: np.ndarray
    sigma2: np.ndarray
    factor_se: np.ndarray
    n_links: np.ndarray
    full: np.ndarray
    process_se: np.ndarray
    parameter_se: np.ndarray
    se: np.ndarray
    total_se: np.ndarray

    @property
    def latest(self) -> np.ndarray:
        """Latest observed value of each origin, ``C_{i, a_i}``."""
        return self.triangle[np.arange(self.triangle.shape[0]), self.latest_age]

    @property
    def ultimate(self) -> np.ndarray:
        """Projected value at the last age, ``C_{i, J-1}``."""
        return self.full[:, -1]

    @property
    def ibnr(self) -> np.ndarray:
        """Projected development still to come, ``ultimate - latest`` (the IBNR reserve of reserving)."""
        return self.ultimate - self.latest


def _fill_sigma2(sigma2: np.ndarray, method: str) -> np.ndarray:
    """Fill the ``NaN`` entries of ``sigma2`` (development periods with a single link ratio).

    ``"mack"``: Mack's (1993) rule for the last period, ``sigma2_j = min(sigma2_{j-1}^2 / sigma2_{j-2},
    sigma2_{j-2}, sigma2_{j-1})`` (ChainLadder ``est.sigma="Mack"``), applied in order of ``j``; with fewer than
    two earlier values the previous one (or 0). ``"log-linear"``: ``log sigma_j`` linear in ``j``, fitted by
    least squares to the positive estimates (ChainLadder's default ``est.sigma="log-linear"``); with fewer than
    two positive estimates Mack's rule. ChainLadder additionally falls back to Mack's rule when the slope has a
    p-value above 0.05; this function does not.
    """
    out = sigma2.copy()
    missing = np.flatnonzero(np.isnan(out))
    if missing.size == 0:
        return out
    j = np.arange(out.size, dtype=np.float64)
    ok = ~np.isnan(out) & (out > 0)
    if method == "log-linear" and ok.sum() >= 2:
        slope, intercept = np.polyfit(j[ok], 0.5 * np.log(out[ok]), 1)
        out[missing] = np.exp(2.0 * (intercept + slope * j[missing]))
        return out
    for m in missing:
        if m >= 2 and not np.isnan(out[m - 2]):
            a, b = out[m - 2], out[m - 1]
            out[m] = min(b * b / a if a > 0 else np.inf, a, b)
        else:
            out[m] = out[m - 1] if m >= 1 else 0.0
    return out


def mack_chain_ladder(
    triangle: Any, *, sigma_method: Literal["log-linear", "mack"] = "log-linear"
) -> MackChainLadder:
    """Chain ladder on a cumulative triangle with Mack's (1993) distribution-free standard errors.

    ``triangle`` is an ``(I, J)`` array of cumulative amounts ``C_{ij}`` (origin ``i``, age ``j``), ``NaN`` where
    not observed; each origin is observed on ages ``0..a_i`` (any pattern of ``a_i``, not only a square
    triangle). With ``O_j`` the origins observed at ``j + 1`` with ``C_{ij} > 0`` (Mack's model is multiplicative:
    an origin with nothing yet at age ``j`` has no link ratio there) and ``S_j = sum_{i in O_j} C_{ij}``:

    - volume-weighted development factors ``f_j = sum_{i in O_j} C_{i,j+1} / S_j`` (``f_j = 1`` without data);
    - ``sigma_j^2 = 1/(|O_j| - 1) sum_{i in O_j} C_{ij} (C_{i,j+1}/C_{ij} - f_j)^2`` (Mack 1993); a
      period with one link ratio is extrapolated by ``sigma_method`` (:func:`_fill_sigma2`), a period without
      any has ``sigma_j^2 = 0``;
    - projections ``C_{i,j+1} = f_j C_{ij}`` for ``j >= a_i``;
    - the mean squared error of the projection (Mack 1993, Theorem 3, in the recursive form of Mack 1999 /
      ChainLadder ``MackChainLadder(mse.method="Mack")``), starting at 0 on the latest diagonal::

          process^2_{i,j+1}   = sigma_j^2 C_{ij} + f_j^2 process^2_{ij}
          parameter^2_{i,j+1} = C_{ij}^2 sigma_j^2 / S_j + f_j^2 parameter^2_{ij}

      which sums to ``C_{iJ}^2 sum_j sigma_j^2 / f_j^2 (1 / C_{ij} + 1 / S_j)``;
    - the total over origins (Mack 1993, Corollary to Theorem 3): process variances add, and the parameter
      variance follows ``P_{j+1} = M_j^2 sigma_j^2 / S_j + f_j^2 P_j`` with ``M_j`` the sum of ``C_{ij}`` over
      the origins projected from ``j`` (``a_i <= j``).

    Vectorised over origins; the loop runs over the ``J - 1`` development periods. On the Taylor & Ashe (1983)
    triangle with ``sigma_method="mack"`` this reproduces ``MackChainLadder(GenIns, est.sigma="Mack")``.
    """
    if sigma_method not in ("log-linear", "mack"):
        raise DataValidationError(f"sigma_method must be 'log-linear' or 'mack', got {sigma_method!r}")
    C = np.array(triangle, dtype=np.float64)
    if C.ndim != 2 or C.shape[1] < 2 or C.shape[0] < 1:
        raise DataValidationError(f"triangle must be a 2-D array (origins, ages) with >= 2 ages, got shape {C.shape}")
    I, J = C.shape
    observed = ~np.isnan(C)
    latest_age = observed.sum(axis=1) - 1
    prefix = np.arange(J)[None, :] <= latest_age[:, None]
    if np.any(observed != prefix) or np.any(latest_age < 0):
        i = int(np.argmax(np.any(observed != prefix, axis=1) | (latest_age < 0)))
        raise DataValidationError(
            f"triangle row {i} is not observed on a prefix of ages 0..a_i (NaN only after the latest age); "
            "fill the gaps or drop the row"
        )
    if np.any(np.isinf(C)) or np.any(C[observed] < 0):
        raise DataValidationError("triangle values must be finite and >= 0")

    x, y = C[:, :-1], C[:, 1:]
    link = observed[:, 1:] & (np.nan_to_num(x) > 0)
    xs = np.where(link, x, 0.0)
    volume = xs.sum(axis=0)
    n_links = link.sum(axis=0)
    has = volume > 0
    factors = np.where(has, np.where(link, y, 0.0).sum(axis=0) / np.where(has, volume, 1.0), 1.0)
    resid = np.where(link, (np.where(link, y, 0.0) - factors * xs) ** 2 / np.where(link, x, 1.0), 0.0).sum(axis=0)
    sigma2 = np.where(n_links >= 2, resid / np.maximum(n_links - 1, 1), np.nan)
    sigma2[n_links == 0] = 0.0
    sigma2 = _fill_sigma2(sigma2, sigma_method)
    fse2 = np.where(has, sigma2 / np.where(has, volume, 1.0), 0.0)

    full = C.copy()
    proc2 = np.zeros((I, J))
    param2 = np.zeros((I, J))
    total_param2 = np.zeros(J)
    for j in range(J - 1):
        proj = latest_age <= j
        cj = full[:, j]
        full[:, j + 1] = np.where(proj, cj * factors[j], full[:, j + 1])
        proc2[:, j + 1] = np.where(proj, sigma2[j] * cj + factors[j] ** 2 * proc2[:, j], 0.0)
        param2[:, j + 1] = np.where(proj, cj**2 * fse2[j] + factors[j] ** 2 * param2[:, j], 0.0)
        m_j = cj[proj].sum()
        total_param2[j + 1] = m_j**2 * fse2[j] + factors[j] ** 2 * total_param2[j]
    return MackChainLadder(
        triangle=C,
        latest_age=latest_age,
        factors=factors,
        sigma2=sigma2,
        factor_se=np.sqrt(fse2),
        n_links=n_links,
        full=full,
        process_se=np.sqrt(proc2),
        parameter_se=np.sqrt(param2),
        se=np.sqrt(proc2 + param2),
        total_se=np.sqrt(proc2.sum(axis=0) + total_param2),
    )


# ================================================================================== shared baseline plumbing
@dataclass(frozen=True)
class _Curves:
    """Wide (cohort x age) arrays of a history table; ``NaN`` where an age is not observed yet."""

    ids: pd.Index
    installs: np.ndarray
    last: np.ndarray
    revenue: np.ndarray
    cum_revenue: np.ndarray
    ltv: np.ndarray
    active: np.ndarray | None

    @classmethod
    def from_table(cls, history: pd.DataFrame, columns: CohortColumns, width: int = 0) -> _Curves:
        """Validate ``history`` and lay it out wide, with at least ``width`` age columns (NaN-padded)."""
        v = validate_cohort_table(history, columns)
        codes, ids = pd.factorize(v[columns.cohort], sort=True)
        age = v[columns.age].to_numpy()
        shape = (ids.size, max(int(age.max()) + 1, width))

        def wide(col: str) -> np.ndarray:
            out = np.full(shape, np.nan)
            out[codes, age] = v[col].to_numpy(dtype=np.float64)
            return out

        revenue = wide(columns.revenue)
        installs = np.zeros(ids.size)
        installs[codes] = v[columns.installs].to_numpy(dtype=np.float64)
        last = np.zeros(ids.size, dtype=np.int64)
        np.maximum.at(last, codes, age)
        cum = np.cumsum(np.nan_to_num(revenue), axis=1)
        cum[np.isnan(revenue)] = np.nan
        active = wide(columns.active_users) if columns.active_users is not None else None
        return cls(pd.Index(ids), installs, last, revenue, cum, cum / installs[:, None], active)

    def targets(self, cohorts: Sequence[str], name: str) -> np.ndarray:
        idx = self.ids.get_indexer(list(cohorts))
        if np.any(idx < 0):
            missing = [c for c, i in zip(cohorts, idx) if i < 0]
            raise DataValidationError(
                f"{name}: target cohort {missing[0]!r} is not in the history ({len(missing)} missing); a target "
                "must have been acquired by the cutoff"
            )
        return idx

    def mature(self, age: int) -> np.ndarray:
        """Indices of the cohorts observed to ``age``."""
        return np.flatnonzero(self.last >= age)


@dataclass
class _Setup:
    curves: _Curves
    rows: np.ndarray  # target index into curves
    ages: np.ndarray
    k: np.ndarray  # observed age of each target
    lk: np.ndarray  # L(k) of each target
    mean: np.ndarray  # (C, A), observed cells filled in


def _setup(history: pd.DataFrame, cohorts: Sequence[str], ages: Sequence[int], columns: CohortColumns,
           name: str) -> _Setup:
    ages = np.asarray(ages, dtype=np.int64).reshape(-1)
    if ages.size and ages.min() < 0:
        raise DataValidationError(f"{name}: checkpoint ages must be >= 0, got {ages.tolist()}")
    curves = _Curves.from_table(history, columns, int(ages.max()) + 1 if ages.size else 0)
    rows = curves.targets(cohorts, name)
    k = curves.last[rows]
    lk = curves.ltv[rows, k]
    mean = curves.ltv[rows[:, None], ages[None, :]]
    mean = np.where(ages[None, :] <= k[:, None], mean, np.nan)
    return _Setup(curves, rows, ages, k, lk, mean)


def _pairs(s: _Setup) -> Iterator[tuple[int, int, int, np.ndarray]]:
    """Yield ``(k, a, H, targets)``: each origin age ``k`` of the targets and each checkpoint ``H > k``."""
    for k in np.unique(s.k):
        sel = np.flatnonzero(s.k == k)
        for a, h in enumerate(s.ages):
            if h > k:
                yield int(k), a, int(h), sel


class _Draws:
    """Predictive draws collected cell by cell; cells without draws are all-NaN (point forecast only)."""

    def __init__(self, n_samples: int) -> None:
        self.n_samples = n_samples
        self.cells: list[tuple[np.ndarray, int, np.ndarray]] = []

    def add(self, rows: np.ndarray, a: int, draws: np.ndarray) -> None:
        self.cells.append((rows, a, draws))

    def array(self, mean: np.ndarray) -> np.ndarray | None:
        if not self.cells:
            return None
        out = np.full(mean.shape + (self.n_samples,), np.nan)
        for rows, a, draws in self.cells:
            out[rows, a, :] = draws
        return out


def _median_ratio(curves: _Curves, k: int, h: int) -> tuple[np.ndarray, float]:
    """Development ratios ``L_m(h) / L_m(k)`` of the mature cohorts with ``L_m(k) > 0``, and their median (1
    without any)."""
    m = curves.mature(h)
    lk, lh = curves.ltv[m, k], curves.ltv[m, h]
    ratios = lh[lk > 0] / lk[lk > 0]
    return ratios, float(np.median(ratios)) if ratios.size else 1.0


def _check_n_samples(n_samples: int) -> None:
    if not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise DataValidationError(f"n_samples must be a positive integer, got {n_samples!r}")


# ================================================================================================ baselines
@dataclass(frozen=True)
class Multiplier:
    """The industry LTV multiplier: ``L_c(H) = L_c(k) * median_m L_m(H) / L_m(k)``.

    The median is over the cohorts mature for ``H`` with ``L_m(k) > 0``: the "Dk revenue x multiplier" rule of thumb
    of mobile user acquisition, i.e. the chain-ladder link ratio from ``k`` to ``H`` taken in one step and averaged
    by a median instead of volume weights (compare :func:`mack_chain_ladder`, Mack 1993). With at least
    ``min_interval_cohorts`` ratios the predictive draws are ``L_c(k)`` times ratios resampled with replacement
    from the mature ones (their empirical distribution, so its quantiles give the interval); with fewer, a point
    forecast. With no mature cohort the forecast is ``L_c(k)`` (no further revenue). Ratios are ``>= 1``, so
    forecasts never fall below ``L_c(k)``.
    """

    min_interval_cohorts: int = 5
    n_samples: int = 1000
    seed: int = 0
    columns: CohortColumns = CohortColumns()

    def __post_init__(self) -> None:
        _check_n_samples(self.n_samples)

    def __call__(self, history: pd.DataFrame, cohorts: Sequence[str], ages: Sequence[int]) -> CurveForecast:
        s = _setup(history, cohorts, ages, self.columns, "multiplier")
        rng = np.random.default_rng(self.seed)
        draws = _Draws(self.n_samples)
        for k, a, h, sel in _pairs(s):
            ratios, med = _median_ratio(s.curves, k, h)
            s.mean[sel, a] = s.lk[sel] * med
            if ratios.size >= self.min_interval_cohorts:
                draws.add(sel, a, s.lk[sel, None] * rng.choice(ratios, size=self.n_samples)[None, :])
        return CurveForecast(list(map(str, cohorts)), s.ages, s.mean, draws.array(s.mean))


@dataclass(frozen=True)
class ChainLadder:
    """Chain ladder on the cohort x age triangle of cumulative revenue, with Mack (1993) standard errors.

    The history's cumulative revenue ``C_{c,a}`` is projected by :func:`mack_chain_ladder` (volume-weighted
    development factors; ``sigma_method`` extrapolates ``sigma^2`` of the last development period, log-linear by
    default as in R ``ChainLadder``): ``L_c(H) = C_c(k) prod_{j=k}^{H-1} f_j / installs_c``; beyond the oldest
    age in the history there is no link ratio, so ``f_j = 1`` and no error is added there. Predictive draws:
    ``L_c(k) + R`` with the future revenue per install ``R`` log-normal with the projected mean and the Mack
    standard error (moment-matched: ``s^2 = log(1 + se^2 / m^2)``, ``mu = log m - s^2 / 2``), so draws never fall below
    ``L_c(k)``; a cell with ``m = 0`` or ``se = 0`` is a point mass.
    """

    sigma_method: Literal["log-linear", "mack"] = "log-linear"
    n_samples: int = 1000
    seed: int = 0
    columns: CohortColumns = CohortColumns()

    def __post_init__(self) -> None:
        _check_n_samples(self.n_samples)
        if self.sigma_method not in ("log-linear", "mack"):
            raise DataValidationError(f"sigma_method must be 'log-linear' or 'mack', got {self.sigma_method!r}")

    def __call__(self, history: pd.DataFrame, cohorts: Sequence[str], ages: Sequence[int]) -> CurveForecast:
        s = _setup(history, cohorts, ages, self.columns, "chain_ladder")
        cur = s.curves
        if cur.cum_revenue.shape[1] < 2:  # only age 0 observed anywhere: nothing to develop
            mean = np.where(np.isnan(s.mean), s.lk[:, None], s.mean)
            return CurveForecast(list(map(str, cohorts)), s.ages, mean, mean[:, :, None].copy())
        mack = mack_chain_ladder(cur.cum_revenue, sigma_method=self.sigma_method)
        col = s.ages[None, :]
        scale = cur.installs[s.rows, None]
        future = s.ages[None, :] > s.k[:, None]
        mean = np.where(future, mack.full[s.rows[:, None], col] / scale, s.mean)
        mean = np.maximum(mean, s.lk[:, None])
        se = np.where(future, mack.se[s.rows[:, None], col] / scale, 0.0)
        inc = mean - s.lk[:, None]
        spread = (inc > 0) & (se > 0)
        safe_inc = np.where(spread, inc, 1.0)
        sig2 = np.where(spread, np.log1p((se / safe_inc) ** 2), 0.0)
        mu = np.log(safe_inc) - sig2 / 2.0
        z = np.random.default_rng(self.seed).standard_normal(mean.shape + (self.n_samples,))
        draws = np.exp(mu[..., None] + np.sqrt(sig2)[..., None] * z)
        samples = np.where(spread[..., None], s.lk[:, None, None] + draws, mean[..., None])
        return CurveForecast(list(map(str, cohorts)), s.ages, mean, samples)


@dataclass(frozen=True)
class Regression:
    """Ordinary least squares of ``L(H)`` on ``L(k)`` across the mature cohorts, per ``(k, H)``.

    ``L(H) = alpha + beta L(k)`` fitted to the cohorts mature for ``H``; the forecast is ``max(alpha + beta L_c(k),
    L_c(k))`` (LTV cannot fall). With ``n >= min_interval_cohorts`` (default 4) mature cohorts the draws come from
    the classical OLS prediction distribution ``yhat + t_{n-2} s sqrt(1 + 1/n + (x - xbar)^2 / Sxx)`` with
    ``s^2 = SSE / (n - 2)`` (e.g. Weisberg, *Applied Linear Regression*, ch. 2), clipped at ``L_c(k)``. With fewer than
    ``min_cohorts`` (default 3) mature cohorts, or no spread in ``L(k)``, it falls back to the median multiplier
    (:class:`Multiplier`), and to ``L_c(k)`` with none.
    """

    min_cohorts: int = 3
    min_interval_cohorts: int = 4
    n_samples: int = 1000
    seed: int = 0
    columns: CohortColumns = CohortColumns()

    def __post_init__(self) -> None:
        _check_n_samples(self.n_samples)
        if self.min_cohorts < 2 or self.min_interval_cohorts < 3:
            raise DataValidationError(
                "Regression needs min_cohorts >= 2 (a line through the points) and min_interval_cohorts >= 3 "
                f"(t with n - 2 >= 1 degrees of freedom); got {self.min_cohorts}, {self.min_interval_cohorts}"
            )

    def __call__(self, history: pd.DataFrame, cohorts: Sequence[str], ages: Sequence[int]) -> CurveForecast:
        s = _setup(history, cohorts, ages, self.columns, "regression")
        rng = np.random.default_rng(self.seed)
        draws = _Draws(self.n_samples)
        for k, a, h, sel in _pairs(s):
            m = s.curves.mature(h)
            x, y = s.curves.ltv[m, k], s.curves.ltv[m, h]
            n = m.size
            sxx = float(np.sum((x - x.mean()) ** 2)) if n else 0.0
            x0 = s.lk[sel]
            if n < self.min_cohorts or sxx <= 0.0:
                s.mean[sel, a] = x0 * _median_ratio(s.curves, k, h)[1]
                continue
            beta = float(np.sum((x - x.mean()) * (y - y.mean()))) / sxx
            alpha = y.mean() - beta * x.mean()
            pred = alpha + beta * x0
            s.mean[sel, a] = np.maximum(pred, x0)
            if n >= self.min_interval_cohorts:
                resid = y - alpha - beta * x
                s2 = float(resid @ resid) / (n - 2)
                se = np.sqrt(s2 * (1.0 + 1.0 / n + (x0 - x.mean()) ** 2 / sxx))
                t = rng.standard_t(n - 2, size=self.n_samples)
                draws.add(sel, a, np.maximum(pred[:, None] + se[:, None] * t[None, :], x0[:, None]))
        return CurveForecast(list(map(str, cohorts)), s.ages, s.mean, draws.array(s.mean))


@dataclass(frozen=True)
class PowerLaw:
    """The spreadsheet method: power-law retention times constant ARPDAU.

    Retention ``r(t) = active_t / installs = a_c t^(-b)`` for ``t >= 1``: the slope ``-b`` is the least-squares
    slope of ``log r`` on ``log t`` over the pooled points of the cohorts mature for ``H`` (ages ``1..H``) and of
    the target (ages ``1..k``), with one intercept per cohort (so cohorts at different retention levels share
    the decay exponent; points with ``r = 0`` are left out); ``a_c`` is then rescaled to the target's own
    observed retention, ``log a_c = mean_t (log r_c(t) + b log t)`` over its observed ages (the pooled intercept
    when it has none). ARPDAU is the target's ``sum revenue / sum active`` over its ages ``1..k`` (the pooled
    value of the mature cohorts over ``1..H`` when the target has no active user yet). Then

        L_c(H) = L_c(k) + ARPDAU_c * sum_{t=k+1}^{H} a_c t^(-b)

    (the retention-curve x ARPDAU spreadsheet model of mobile-game analytics; Fader & Hardie 2007, "How to
    project customer retention", J. Interactive Marketing 21(1), show why such curve fits extrapolate poorly,
    which is what makes it a baseline). Without a slope to fit (no cohort with two
    positive-retention ages) the forecast is ``L_c(k)``. Needs an active-users column; point forecast only.
    """

    columns: CohortColumns = CohortColumns(active_users="active_users")

    def __post_init__(self) -> None:
        if self.columns.active_users is None:
            raise DataValidationError(
                "power_law needs active users (retention = active_users / installs); pass "
                "columns=CohortColumns(active_users='active_users', ...)"
            )

    def __call__(self, history: pd.DataFrame, cohorts: Sequence[str], ages: Sequence[int]) -> CurveForecast:
        if self.columns.active_users not in history.columns:
            raise DataValidationError(
                f"power_law needs the active-users column {self.columns.active_users!r}, which the history lacks "
                f"(columns: {list(map(str, history.columns))}); use another baseline or add active users"
            )
        s = _setup(history, cohorts, ages, self.columns, "power_law")
        cur = s.curves
        assert cur.active is not None
        ret = cur.active / cur.installs[:, None]
        for k, a, h, sel in _pairs(s):
            m = cur.mature(h)
            t = np.arange(1, h + 1, dtype=np.float64)
            pooled = _loglog_sums(ret[m, 1 : h + 1], t)
            own = _loglog_sums(ret[s.rows[sel], 1 : k + 1], t[:k])
            sxx_w = pooled["sxx_w"].sum() + own["sxx_w"]
            sxy_w = pooled["sxy_w"].sum() + own["sxy_w"]
            n_p = pooled["n"].sum()
            fit = sxx_w > 0
            slope = np.where(fit, sxy_w / np.where(fit, sxx_w, 1.0), 0.0)
            log_a_pooled = (pooled["sy"].sum() - slope * pooled["sx"].sum()) / max(n_p, 1)
            has_own = own["n"] > 0
            log_a = np.where(has_own, (own["sy"] - slope * own["sx"]) / np.maximum(own["n"], 1), log_a_pooled)
            fit &= has_own | (n_p > 0)
            rev_own = np.nansum(cur.revenue[s.rows[sel], 1 : k + 1], axis=1)
            act_own = np.nansum(cur.active[s.rows[sel], 1 : k + 1], axis=1)
            rev_p, act_p = np.nansum(cur.revenue[m, 1 : h + 1]), np.nansum(cur.active[m, 1 : h + 1])
            arpdau_pooled = rev_p / act_p if act_p > 0 else 0.0
            arpdau = np.where(act_own > 0, rev_own / np.where(act_own > 0, act_own, 1.0), arpdau_pooled)
            future = t[k:]  # ages k+1..h
            tail = np.exp(log_a[:, None] + slope[:, None] * np.log(future)[None, :]).sum(axis=1)
            s.mean[sel, a] = s.lk[sel] + np.where(fit, arpdau * tail, 0.0)
        return CurveForecast(list(map(str, cohorts)), s.ages, s.mean, None)


def _loglog_sums(r: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
    """Per-row sums for least squares of ``log r`` on ``log t`` over the positive entries of ``r`` (rows x ages):
    ``n``, ``sx``, ``sy`` and the within-row centred ``sxx_w = sxx - sx^2/n``, ``sxy_w = sxy - sx sy / n``."""
    ok = np.nan_to_num(r) > 0
    x = np.where(ok, np.log(t)[None, :], 0.0)
    y = np.where(ok, np.log(np.where(ok, r, 1.0)), 0.0)
    n = ok.sum(axis=1)
    sx, sy = x.sum(axis=1), y.sum(axis=1)
    nn = np.maximum(n, 1)
    return {
        "n": n,
        "sx": sx,
        "sy": sy,
        "sxx_w": (x * x).sum(axis=1) - sx * sx / nn,
        "sxy_w": (x * y).sum(axis=1) - sx * sy / nn,
    }


def multiplier(*, min_interval_cohorts: int = 5, n_samples: int = 1000, seed: int = 0,
               columns: CohortColumns = CohortColumns()) -> Multiplier:
    """The LTV-multiplier baseline (:class:`Multiplier`): ``L_c(H) = L_c(k) * median_m L_m(H) / L_m(k)``."""
    return Multiplier(min_interval_cohorts, n_samples, seed, columns)


def chain_ladder(*, sigma_method: Literal["log-linear", "mack"] = "log-linear", n_samples: int = 1000,
                 seed: int = 0, columns: CohortColumns = CohortColumns()) -> ChainLadder:
    """The chain-ladder baseline with Mack (1993) standard errors (:class:`ChainLadder`):
    ``L_c(H) = L_c(k) prod_{j=k}^{H-1} f_j``, ``f_j`` volume-weighted."""
    return ChainLadder(sigma_method, n_samples, seed, columns)


def regression(*, min_cohorts: int = 3, min_interval_cohorts: int = 4, n_samples: int = 1000, seed: int = 0,
               columns: CohortColumns = CohortColumns()) -> Regression:
    """The OLS baseline (:class:`Regression`): ``L_c(H) = max(alpha + beta L_c(k), L_c(k))`` fitted across
    mature cohorts, with Student-t (``n - 2`` df) prediction draws."""
    return Regression(min_cohorts, min_interval_cohorts, n_samples, seed, columns)


def power_law(*, columns: CohortColumns = CohortColumns(active_users="active_users")) -> PowerLaw:
    """The power-law retention x ARPDAU baseline (:class:`PowerLaw`):
    ``L_c(H) = L_c(k) + ARPDAU_c sum_{t=k+1}^{H} a_c t^(-b)``."""
    return PowerLaw(columns)


def baselines(columns: CohortColumns = CohortColumns(), *, n_samples: int = 1000, seed: int = 0
              ) -> dict[str, Forecaster]:
    """The four baselines keyed by name (``power_law`` only when ``columns`` names active users)."""
    out: dict[str, Forecaster] = {
        "multiplier": multiplier(n_samples=n_samples, seed=seed, columns=columns),
        "chain_ladder": chain_ladder(n_samples=n_samples, seed=seed, columns=columns),
        "regression": regression(n_samples=n_samples, seed=seed, columns=columns),
    }
    if columns.active_users is not None:
        out["power_law"] = power_law(columns=columns)
    return out


# ============================================================================================ the backtest
def _positive_ints(values: Any, name: str) -> tuple[int, ...]:
    vals = list(np.atleast_1d(np.asarray(values)))
    if not vals:
        raise DataValidationError(f"{name} is empty; pass at least one age")
    out = []
    for v in vals:
        if isinstance(v, (bool, np.bool_)) or not np.issubdtype(np.asarray(v).dtype, np.number) \
                or float(v) != round(float(v)) or float(v) < 1:
            raise DataValidationError(
                f"{name} must be positive whole numbers of periods, got {v!r}"
                + (" (age 0 is the acquisition period itself; forecast from k >= 1)" if name == "ks" else "")
            )
        out.append(int(v))
    return tuple(sorted(set(out)))


@dataclass
class BacktestResult:
    """Per-cohort rows of a rolling-origin backtest, and their summary by model, origin age and checkpoint.

    ``rows``: one row per (model, cutoff, k, cohort, checkpoint) with columns ``model``, ``cutoff`` (period index;
    plus ``cutoff_date``, the first day of that period, when the calendar comes from dates), ``oldest_age`` (the
    oldest age any cohort shows in the history at that cutoff: how far the history's own curves reach), ``k``,
    ``cohort`` (and the grouping columns of ``columns.groups``, to slice the scores), ``checkpoint``, ``installs``,
    ``observed``
    (``L(k)``), ``actual`` (``L(H)`` in the full table), ``forecast``, ``lower_<L>`` / ``upper_<L>`` for each
    central interval level ``L`` (NaN for point forecasts or cells without draws) and ``crps`` (likewise NaN).
    """

    rows: pd.DataFrame
    levels: tuple[float, ...] = (0.8, 0.95)
    models: tuple[str, ...] = ()

    def score(self, by: str | Sequence[str] | None = None) -> pd.DataFrame:
        """One row per (model, k, checkpoint), models in input order; with ``by`` (columns of :attr:`rows`, e.g. a
        grouping column or a binned ``oldest_age``), one row per (model, *by, k, checkpoint). With weights
        ``w = installs``:

        - ``n_cohorts``: cohorts scored (each cohort is ``k`` old at one cutoff only), ``n_cutoffs``;
        - ``median_ape``: median of ``|forecast - actual| / actual`` over rows with ``actual > 0``;
        - ``wape = sum w |forecast - actual| / sum w actual`` (revenue-weighted absolute error);
        - ``bias = sum w (forecast - actual) / sum w actual`` (signed; +1 = twice the revenue);
        - ``portfolio_error``: for each cutoff, ``sum w forecast / sum w actual - 1`` (the error of the total
          revenue forecast of the cohorts scored at that cutoff), then the mean of its absolute value over the
          cutoffs with ``sum w actual > 0``;
        - ``coverage_<L>``: share of rows with predictive draws whose ``actual`` lies in the central ``L``
          interval (:func:`~btyd_ltv.metrics.interval_coverage`; NaN without any draws);
        - ``n_intervals``: rows with predictive draws (those behind coverage and CRPS);
        - ``crps``: mean CRPS over those rows (:func:`~btyd_ltv.metrics.crps_samples`; NaN without draws).
        """
        r = self.rows
        by = [by] if isinstance(by, str) else list(by or ())
        missing = [c for c in by if c not in r.columns]
        if missing or any(c in ("model", "k", "checkpoint") for c in by):
            raise DataValidationError(
                f"score(by=...): {missing or by} must be columns of the backtest rows other than model, k and "
                f"checkpoint (rows have {list(r.columns)})"
            )
        out = []
        order = {m: i for i, m in enumerate(self.models or tuple(dict.fromkeys(r["model"])))}
        for key, g in r.groupby(["model", *by, "k", "checkpoint"], sort=False, dropna=False):
            model, *slices, k, h = key
            w, p, y = (g[c].to_numpy(dtype=np.float64) for c in ("installs", "forecast", "actual"))
            pos = y > 0
            denom = float(w @ y)
            by_cut = g.assign(wp=w * p, wy=w * y).groupby("cutoff")[["wp", "wy"]].sum()
            by_cut = by_cut[by_cut["wy"] > 0]
            row: dict[str, Any] = {
                "model": model,
                **dict(zip(by, slices)),
                "k": int(k),
                "checkpoint": int(h),
                "n_cohorts": len(g),
                "n_cutoffs": int(g["cutoff"].nunique()),
                "median_ape": float(np.median(np.abs(p[pos] - y[pos]) / y[pos])) if pos.any() else np.nan,
                "wape": float(w @ np.abs(p - y)) / denom if denom > 0 else np.nan,
                "bias": float(w @ (p - y)) / denom if denom > 0 else np.nan,
                "portfolio_error": float(np.mean(np.abs(by_cut["wp"] / by_cut["wy"] - 1.0)))
                if len(by_cut) else np.nan,
            }
            for level in self.levels:
                lab = _pct(level)
                lo, hi = g[f"lower_{lab}"].to_numpy(), g[f"upper_{lab}"].to_numpy()
                ok = ~np.isnan(lo)
                row[f"coverage_{lab}"] = interval_coverage(y[ok], lo[ok], hi[ok]) if ok.any() else np.nan
            row["n_intervals"] = int(np.isfinite(g["crps"].to_numpy()).sum())
            crps = g["crps"].to_numpy()
            row["crps"] = float(np.nanmean(crps)) if np.isfinite(crps).any() else np.nan
            out.append(row)
        table = pd.DataFrame(out)
        if table.empty:
            return table
        table["_o"] = table["model"].map(order)
        return table.sort_values(["_o", *by, "k", "checkpoint"]).drop(columns="_o").reset_index(drop=True)

    def score_by_history(self, edges: Sequence[int]) -> pd.DataFrame:
        """:meth:`score` sliced by the length of the history behind each forecast: ``oldest_age`` binned at the
        increasing ``edges`` (a bin holds ``edges[i] <= oldest_age < edges[i + 1]``), as a column ``history``
        labelled with the oldest ages the bin actually holds (``"4-6"``). A forecast made when no cohort in the
        history is older than a few periods extrapolates the whole curve shape from the model's family."""
        e = history_bin_edges(edges)
        rows = self.rows.assign(history=np.digitize(self.rows["oldest_age"], e))
        span = rows.groupby("history")["oldest_age"].agg(["min", "max"])  # the ages each bin actually holds
        labels = {b: f"{lo}-{hi}" if lo < hi else f"{lo}" for b, (lo, hi) in span.iterrows()}
        scores = BacktestResult(rows=rows, levels=self.levels, models=self.models).score(by="history")
        scores["history"] = scores["history"].map(labels)
        return scores

    def to_markdown(self, floatfmt: str = ".3g", by: str | Sequence[str] | None = None) -> str:
        """The :meth:`score` table (sliced ``by`` those columns) as a Markdown pipe table (:func:`score_markdown`)."""
        return score_markdown(self.score(by), floatfmt)


def history_bin_edges(edges: Sequence[int]) -> list[int]:
    """The bin edges of :meth:`BacktestResult.score_by_history` as whole numbers; raises
    :class:`DataValidationError` unless they are strictly increasing (check them before a long backtest)."""
    e = [int(x) for x in edges]
    if any(b <= a for a, b in zip(e, e[1:])):
        raise DataValidationError(f"history bin edges must be strictly increasing, got {list(edges)}")
    return e


def score_markdown(scores: pd.DataFrame, floatfmt: str = ".3g") -> str:
    """A score table (:meth:`BacktestResult.score`) as a GitHub-flavoured Markdown pipe table, one line per
    (model, k, checkpoint), via :func:`~btyd_ltv.metrics.report_markdown`."""
    return report_markdown(scores.set_index("model"), floatfmt)


def _pct(level: float) -> str:
    return f"{round(level * 100.0, 6):g}"


def rolling_origin(
    table: pd.DataFrame,
    forecasters: Mapping[str, Forecaster],
    *,
    ks: Sequence[int] | None = None,
    checkpoints: Sequence[int] | None = None,
    cutoffs: Sequence[int | DateLike] | None = None,
    max_cutoffs: int | None = None,
    acquired: str | Sequence[int] | np.ndarray | None = None,
    period: str = "D",
    columns: CohortColumns = CohortColumns(),
    min_mature: int = 1,
    levels: Sequence[float] = (0.8, 0.95),
) -> BacktestResult:
    """Rolling-origin backtest (Tashman 2000) of cohort LTV curve forecasters.

    A *record* is a (cutoff ``t``, origin age ``k``, cohort ``c``, checkpoint ``H``) with ``c`` exactly ``k``
    old at ``t`` (``acquired_c + k = t``), ``H > k``, ``H`` observed for ``c`` in the full table, and at least
    ``min_mature`` cohorts already observed to age ``H`` at ``t`` (without one, no method fit on the history can
    say anything about age ``H``; ``min_mature=0`` drops the condition). Cutoffs: ``cutoffs`` (period indices,
    or dates for date-based calendars) or by default every ``t`` with a record, subsampled evenly to
    ``max_cutoffs``. At each cutoff the table is cut once (:func:`truncate`) and each forecaster is called once
    with every target cohort (all ``k``, in cohort order) and every checkpoint needed; its output is checked
    (shapes, finite, ``>= 0``, cohorts in order) and each record's forecast, central intervals at ``levels``
    (quantiles of the draws) and CRPS (:func:`~btyd_ltv.metrics.crps_samples`) are kept.

    ``ks`` defaults to :data:`DEFAULT_KS` less the ages without a checkpoint above them; ``checkpoints``
    defaults to :data:`DEFAULT_CHECKPOINTS` ``[period]`` up to the oldest age in the table. ``acquired`` and
    ``period`` define the calendar (:func:`acquisition_period`). Returns a :class:`BacktestResult`; its
    :meth:`~BacktestResult.score` summarises. Raises :class:`DataValidationError` for a non-positive ``k``, a
    ``k`` with no checkpoint above it, no record at all, a missing acquisition column, or a bad forecast.
    """
    if not isinstance(forecasters, Mapping) or not forecasters:
        raise DataValidationError("forecasters must be a non-empty mapping of model name -> forecaster")
    for name, f in forecasters.items():
        if not callable(f):
            raise DataValidationError(f"forecaster {name!r} is not callable; pass f(history, cohorts, ages)")
    levels = tuple(float(x) for x in levels)
    if any(not 0.0 < x < 1.0 for x in levels):
        raise DataValidationError(f"levels must lie in (0, 1), got {levels}")
    if max_cutoffs is not None and (isinstance(max_cutoffs, bool) or int(max_cutoffs) < 1):
        raise DataValidationError(f"max_cutoffs must be a positive integer or None, got {max_cutoffs!r}")
    if min_mature < 0:
        raise DataValidationError(f"min_mature must be >= 0, got {min_mature!r}")
    _check_period(period)

    v = validate_cohort_table(table, columns)
    cal = _calendar(v, acquired, period, columns)
    codes, ids = pd.factorize(v[columns.cohort], sort=True)
    age = v[columns.age].to_numpy()
    first = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])  # v is sorted by cohort, then age
    acq = cal.acquired[first]
    last = np.zeros(ids.size, dtype=np.int64)
    np.maximum.at(last, codes, age)
    installs = v[columns.installs].to_numpy(dtype=np.float64)[first]
    revenue = np.full((ids.size, int(last.max()) + 1), np.nan)
    revenue[codes, age] = v[columns.revenue].to_numpy(dtype=np.float64)
    ltv = np.cumsum(np.nan_to_num(revenue), axis=1) / installs[:, None]
    ltv[np.isnan(revenue)] = np.nan

    if checkpoints is None:
        checkpoints = tuple(h for h in DEFAULT_CHECKPOINTS[period] if h <= last.max())
        if not checkpoints:
            raise DataValidationError(
                f"no default checkpoint {DEFAULT_CHECKPOINTS[period]} is within the oldest age {int(last.max())} of "
                "the table; pass checkpoints=..."
            )
    hs = _positive_ints(checkpoints, "checkpoints")
    if ks is None:
        kk = tuple(k for k in DEFAULT_KS if any(h > k for h in hs))
        if not kk:
            raise DataValidationError(f"no default k {DEFAULT_KS} is below a checkpoint {list(hs)}; pass ks=...")
    else:
        kk = _positive_ints(ks, "ks")
        for k in kk:
            if not any(h > k for h in hs):
                raise DataValidationError(
                    f"k={k} has no checkpoint above it (checkpoints {list(hs)} are all <= {k}); a forecast from age "
                    "k is scored at checkpoints H > k: add a later checkpoint or drop this k"
                )

    # every (cutoff, k, cohort, checkpoint) with the checkpoint matured in the full table
    parts = []
    for h in hs:
        reach = np.flatnonzero(last >= h)
        matured_at = np.sort(acq[reach] + h)  # when each cohort is first seen at age h
        for k in kk:
            if h <= k:
                continue
            t = acq[reach] + k
            n_mature = np.searchsorted(matured_at, t, side="right")
            keep = n_mature >= min_mature
            parts.append(pd.DataFrame({"cutoff": t[keep], "k": k, "c": reach[keep], "checkpoint": h}))
    records = pd.concat(parts, ignore_index=True)
    if cutoffs is not None:
        wanted = np.unique([cal.index_of(c) for c in np.atleast_1d(np.asarray(cutoffs, dtype=object))])
        records = records[records["cutoff"].isin(wanted)]
    if records.empty:
        raise DataValidationError(
            f"no cohort is exactly k in {list(kk)} periods old at any "
            f"{'requested ' if cutoffs is not None else ''}cutoff with a checkpoint in {list(hs)} observed later "
            f"and at least {min_mature} cohort(s) already observed to that checkpoint; use smaller ks or "
            "checkpoints, other cutoffs, or a longer table"
        )
    cuts = np.unique(records["cutoff"].to_numpy())
    if max_cutoffs is not None and cuts.size > max_cutoffs:
        cuts = cuts[np.unique(np.round(np.linspace(0, cuts.size - 1, int(max_cutoffs))).astype(np.int64))]
        records = records[records["cutoff"].isin(cuts)]
    records = records.sort_values(["cutoff", "k", "c", "checkpoint"]).reset_index(drop=True)

    group_values = {g: v[g].to_numpy()[first] for g in columns.groups}
    row_date = cal.acquired + age
    out = []
    for t, rec in records.groupby("cutoff", sort=True):
        history = v.loc[row_date <= t].reset_index(drop=True)
        target_codes = np.unique(rec["c"].to_numpy())
        targets = [str(x) for x in ids[target_codes]]
        ages = np.unique(rec["checkpoint"].to_numpy()).astype(np.int64)
        ti = np.searchsorted(target_codes, rec["c"].to_numpy())
        ai = np.searchsorted(ages, rec["checkpoint"].to_numpy())
        c = rec["c"].to_numpy()
        base = {
            "cutoff": int(t),
            "oldest_age": int(history[columns.age].max()),
            "k": rec["k"].to_numpy(),
            "cohort": ids[c].astype(str),
            **{g: group_values[g][c] for g in columns.groups},
            "checkpoint": rec["checkpoint"].to_numpy(),
            "installs": installs[c],
            "observed": ltv[c, rec["k"].to_numpy()],
            "actual": ltv[c, rec["checkpoint"].to_numpy()],
        }
        for name, f in forecasters.items():
            try:
                fc = f(history.copy(deep=False), list(targets), [int(a) for a in ages])
            except Exception as exc:
                exc.add_note(f"raised by forecaster {name!r} at cutoff {int(t)}")
                raise
            _check_forecast(name, fc, targets, ages)
            cols: dict[str, Any] = {"model": name, **base,
                                    "forecast": np.asarray(fc.mean, dtype=np.float64)[ti, ai]}
            for level in levels:
                cols[f"lower_{_pct(level)}"] = np.full(len(rec), np.nan)
                cols[f"upper_{_pct(level)}"] = np.full(len(rec), np.nan)
            cols["crps"] = np.full(len(rec), np.nan)
            if fc.samples is not None:
                draws = np.asarray(fc.samples, dtype=np.float64)[ti, ai, :]
                has = ~np.isnan(draws).all(axis=1)
                if has.any():
                    for level in levels:
                        lo, hi = np.quantile(draws[has], [(1.0 - level) / 2.0, (1.0 + level) / 2.0], axis=1)
                        cols[f"lower_{_pct(level)}"][has], cols[f"upper_{_pct(level)}"][has] = lo, hi
                    cols["crps"][has] = crps_samples(base["actual"][has], draws[has])
            out.append(pd.DataFrame(cols))
    rows = pd.concat(out, ignore_index=True)
    if cal.origin is not None:
        rows.insert(2, "cutoff_date", cal.date_of(rows["cutoff"].to_numpy()))
    return BacktestResult(rows=rows, levels=levels, models=tuple(forecasters))
