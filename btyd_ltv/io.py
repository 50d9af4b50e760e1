"""Reading inputs and writing outputs atomically.

Every writer renders to a temporary file in the destination directory and ``os.replace``-s it into place, so a
crash (or Ctrl-C) never leaves a half-written CSV or NetCDF behind: the file is either the old one or complete.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

import pandas as pd

from btyd_ltv.errors import DataValidationError

__all__ = ["atomic_path", "write_csv", "write_text", "write_netcdf", "read_posterior", "read_table"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``, on error delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_csv(df: pd.DataFrame, path: str | os.PathLike, *, index: bool = True) -> Path:
    """Write ``df`` to CSV atomically."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=index)
    return Path(path)


def write_text(text: str, path: str | os.PathLike) -> Path:
    """Write text atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_figure(fig, path: str | os.PathLike, *, dpi: int = 100) -> Path:
    """Save a matplotlib figure as PNG atomically (the figure is left open; close it yourself)."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return Path(path)


def write_netcdf(idata, path: str | os.PathLike) -> Path:
    """Write an ArviZ InferenceData to NetCDF (h5netcdf) atomically."""
    with atomic_path(path) as tmp:
        idata.to_netcdf(str(tmp))
    return Path(path)


def read_posterior(path: str | os.PathLike):
    """Load a posterior written by :func:`write_netcdf` (an ArviZ InferenceData), fully into memory."""
    import arviz as az

    path = Path(path)
    if not path.is_file():
        raise DataValidationError(f"posterior file {str(path)!r} does not exist")
    try:
        idata = az.from_netcdf(str(path))
    except Exception as err:  # h5py/xarray raise many types for a non-NetCDF file
        raise DataValidationError(f"posterior file {str(path)!r} is not an ArviZ NetCDF file: {err}") from err
    if "posterior" not in idata.groups() or "model" not in idata.attrs:
        raise DataValidationError(
            f"posterior file {str(path)!r} has no btyd_ltv posterior (missing group 'posterior' or attribute "
            "'model'); write it with `btyd-ltv fit`"
        )
    return idata


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV or Parquet file (by extension; ``.csv.gz`` allowed) into a DataFrame."""
    path = Path(path)
    if not path.is_file():
        raise DataValidationError(f"input file {str(path)!r} does not exist")
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except ImportError as err:
        raise DataValidationError(
            f"cannot read {str(path)!r}: Parquet needs pyarrow (`pip install pyarrow`), or convert it to CSV"
        ) from err
    except (ValueError, OSError, pd.errors.ParserError) as err:
        raise DataValidationError(f"could not read {str(path)!r}: {err}") from err
