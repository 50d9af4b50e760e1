"""Execute every notebook in notebooks/ end to end with small sampler sizes (nbclient, the venv's python3 kernel)."""

from __future__ import annotations

from pathlib import Path

import pytest

# The [dev] extra installs the notebook runner: missing pieces are a failure, never a silent skip.
import jupyter_client.kernelspec as kernelspec
import nbclient
import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SMALL_SAMPLER = {"BTYD_LTV_NB_DRAWS": "200", "BTYD_LTV_NB_TUNE": "200", "BTYD_LTV_NB_CHAINS": "2",
                 "BTYD_LTV_NB_DATASET": "cdnow", "BTYD_LTV_NB_PORTFOLIO_DAYS": "10",
                 "BTYD_LTV_NB_COMPARE_CUSTOMERS": "3000", "BTYD_LTV_NB_MAX_EPOCHS": "30"}
KERNEL = "python3"

pytestmark = pytest.mark.slow


def _outputs_text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if "text" in out:
            parts.append(out["text"])
        data = out.get("data", {})
        parts.extend(v for k, v in data.items() if k in ("text/plain", "text/html"))
    return "\n".join(p if isinstance(p, str) else "".join(p) for p in parts)


_EXECUTED: dict[Path, nbformat.NotebookNode] = {}


def _execute(path: Path) -> nbformat.NotebookNode:
    """The notebook at ``path`` executed once per test session with the small sampler (cached)."""
    if path not in _EXECUTED:
        if KERNEL not in kernelspec.KernelSpecManager().find_kernel_specs():
            pytest.fail(f"Jupyter kernel {KERNEL!r} is not installed (pip install -e '.[dev]' brings ipykernel)")
        nb = nbformat.read(path, as_version=4)
        with pytest.MonkeyPatch.context() as mp:
            for k, v in SMALL_SAMPLER.items():
                mp.setenv(k, v)  # the kernel process inherits this environment
            # The kernel starts in the repository root so that `import btyd_ltv` is this checkout's package
            # (the notebooks read no files by relative path).
            client = nbclient.NotebookClient(
                nb, timeout=600, kernel_name=KERNEL, resources={"metadata": {"path": str(ROOT)}}
            )
            client.execute()  # raises CellExecutionError on the first failing cell
        _EXECUTED[path] = nb
    return _EXECUTED[path]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes(path):
    nb = _execute(path)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code_cells), "a code cell was not executed"
    errors = [o for c in code_cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors


def _executed_outputs(name: str) -> tuple[list[str], int]:
    """Execute notebooks/<name> (cached) and return the text of each code cell's outputs and the figure count."""
    path = next((p for p in NOTEBOOKS if p.name == name), None)
    assert path is not None, f"notebooks/{name} is missing"
    nb = _execute(path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    n_figures = sum("image/png" in o.get("data", {}) for c in code for o in c.get("outputs", []))
    return [_outputs_text(c) for c in code], n_figures


def test_cdnow_notebook_outputs():
    """The CDNOW tutorial shows the parameter table, the diagnostics and the figures, with the small sampler."""
    text, n_figures = _executed_outputs("01_cdnow_btyd.ipynb")
    assert any("2 chains x 200 warmup x 200 draws" in t for t in text)
    params = next(t for t in text if "published MLE" in t)
    for name in ("alpha", "gamma", "r_hat", "ess_bulk", "hdi_3%"):
        assert name in params
    assert any("min_ess_bulk" in t for t in text)
    assert n_figures >= 3


def test_ziln_notebook_outputs():
    """The ZILN tutorial shows the metrics table for the three models, the quantile table and the figures."""
    text, n_figures = _executed_outputs("03_ziln.ipynb")
    assert any("cdnow: NUTS 2 chains x 200 draws" in t for t in text)
    scores = next(t for t in text if "percentile_mape" in t)
    for name in ("ZILN", "BG/NBD x GG", "first purchase", "gini", "crps", "coverage_90"):
        assert name in scores
    assert any("p_positive" in t and "q95" in t for t in text)
    assert n_figures >= 3


def test_cohort_curves_notebook_outputs():
    """The cohort-curve notebook shows the diagnostics, the fan charts, the campaign decision table and the check
    against the simulated truth, with the small sampler on a 10-day portfolio."""
    text, n_figures = _executed_outputs("02_cohort_curves.ipynb")
    assert any("2 chains x 200 draws (200 warmup); portfolio of 10 acquisition days" in t for t in text)
    assert any("divergences" in t and "max R-hat" in t for t in text)
    decision = next(t for t in text if "p_payback_d365" in t and "action" in t)
    assert all(f"app{a}/camp{c}" in decision for a in (1, 2) for c in (1, 2))
    assert any(word in decision for word in ("scale", "hold", "cut"))
    assert any("coverage_90" in t and "true_roas" in t for t in text)
    assert n_figures >= 2


def test_compare_notebook_outputs():
    """The comparison notebook shows the metrics table of all six models, the computed summary and the figures
    (deciles, Lorenz, calibration, two posterior predictive checks), on a 3,000-customer subsample."""
    text, n_figures = _executed_outputs("04_compare.ipynb")
    assert any("NUTS 2 chains x 200 draws (200 warmup); customers: 3000; max epochs: 30" in t for t in text)
    table = next(t for t in text if "percentile_mape" in t and "coverage_90" in t)
    for name in ("bgnbd_gg", "ziln", "dnn_ziln", "mtl_ziln", "mean", "gbdt_two_stage"):
        assert name in table
    assert any("best ranking (Gini)" in t and "lowest CRPS" in t for t in text)
    assert n_figures >= 5
