"""Atomic writers (old file kept, no temp file left, normal permissions) and input readers' errors."""

from __future__ import annotations

import gzip
import os
import stat
import warnings

import numpy as np
import pandas as pd
import pytest

from btyd_ltv.errors import DataValidationError
from btyd_ltv.io import atomic_path, read_posterior, read_table, write_csv, write_netcdf, write_text

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    import arviz as az


def _idata(model: str | None = "bgnbd") -> az.InferenceData:
    rng = np.random.default_rng(0)
    attrs = {"model": model, "method": "nuts", "seed": 3} if model else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return az.from_dict(posterior={"r": rng.gamma(2.0, size=(2, 50)), "alpha": rng.gamma(5.0, size=(2, 50))},
                            attrs=attrs)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield 0o022
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_write_csv_round_trip_and_permissions(tmp_path, umask_022):
    df = pd.DataFrame({"a": [1.5, 2.25], "b": ["x", "y"]}, index=pd.Index([10, 20], name="customer_id"))
    path = write_csv(df, tmp_path / "sub" / "out.csv")  # parent directories are created
    assert path == tmp_path / "sub" / "out.csv"
    pd.testing.assert_frame_equal(pd.read_csv(path, index_col="customer_id"), df)
    assert _mode(path) == 0o644  # not mkstemp's 0600
    assert os.listdir(tmp_path / "sub") == ["out.csv"]
    write_csv(df, tmp_path / "noindex.csv", index=False)
    assert (tmp_path / "noindex.csv").read_text().splitlines()[0] == "a,b"


def test_permissions_follow_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        path = write_text("hello\n", tmp_path / "private.txt")
    finally:
        os.umask(old)
    assert _mode(path) == 0o600
    assert path.read_text() == "hello\n"


def _partial_then_raise(self, path, *args, **kwargs):
    with open(path, "w") as fh:
        fh.write("a,b\n1,")
    raise RuntimeError("disk full")


def test_write_csv_failure_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch, umask_022):
    dest = tmp_path / "customers.csv"
    dest.write_text("old,content\n")
    monkeypatch.setattr(pd.DataFrame, "to_csv", _partial_then_raise)
    with pytest.raises(RuntimeError, match="disk full"):
        write_csv(pd.DataFrame({"a": [1]}), dest)
    assert dest.read_text() == "old,content\n"
    assert os.listdir(tmp_path) == ["customers.csv"]


def test_write_csv_failure_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(pd.DataFrame, "to_csv", _partial_then_raise)
    with pytest.raises(RuntimeError):
        write_csv(pd.DataFrame({"a": [1]}), tmp_path / "new.csv")
    assert os.listdir(tmp_path) == []


def test_interrupt_during_write_leaves_no_temp(tmp_path):
    dest = tmp_path / "x.txt"
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(dest) as tmp:
            assert tmp.parent == tmp_path and tmp.name.startswith(".x.txt.")
            tmp.write_text("half")
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []


def test_write_netcdf_round_trip(tmp_path, umask_022):
    idata = _idata()
    path = write_netcdf(idata, tmp_path / "posterior.nc")
    assert _mode(path) == 0o644
    back = read_posterior(path)
    np.testing.assert_array_equal(back.posterior["r"].values, idata.posterior["r"].values)
    np.testing.assert_array_equal(back.posterior["alpha"].values, idata.posterior["alpha"].values)
    assert back.attrs["model"] == "bgnbd" and back.attrs["seed"] == 3
    assert os.listdir(tmp_path) == ["posterior.nc"]


def test_write_netcdf_failure_keeps_old_file(tmp_path, monkeypatch):
    dest = tmp_path / "posterior.nc"
    write_netcdf(_idata(), dest)
    before = dest.read_bytes()

    def broken(self, filename, *args, **kwargs):
        with open(filename, "wb") as fh:
            fh.write(b"\x89HDF\r\n\x1a\n partial")
        raise OSError("killed")

    monkeypatch.setattr(az.InferenceData, "to_netcdf", broken)
    with pytest.raises(OSError, match="killed"):
        write_netcdf(_idata(), dest)
    assert dest.read_bytes() == before
    assert os.listdir(tmp_path) == ["posterior.nc"]
    monkeypatch.undo()
    assert read_posterior(dest).attrs["model"] == "bgnbd"


def test_read_posterior_missing_file(tmp_path):
    with pytest.raises(DataValidationError, match="does not exist"):
        read_posterior(tmp_path / "nope.nc")


def test_read_posterior_directory_is_not_a_file(tmp_path):
    with pytest.raises(DataValidationError, match="does not exist"):
        read_posterior(tmp_path)


@pytest.mark.parametrize("content", [b"customer_id,frequency\n1,2\n", b"", b"\x89HDF\r\n\x1a\ngarbage"])
def test_read_posterior_not_netcdf(tmp_path, content):
    path = tmp_path / "posterior.nc"
    path.write_bytes(content)
    with pytest.raises(DataValidationError, match="not an ArviZ NetCDF file"):
        read_posterior(path)


def test_read_posterior_without_btyd_attrs(tmp_path):
    path = tmp_path / "foreign.nc"
    _idata(model=None).to_netcdf(str(path))
    with pytest.raises(DataValidationError, match="has no btyd_ltv posterior"):
        read_posterior(path)


def test_read_posterior_without_posterior_group(tmp_path):
    path = tmp_path / "stats.nc"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = az.from_dict(sample_stats={"lp": np.zeros((1, 5))}, attrs={"model": "bgnbd"})
    idata.to_netcdf(str(path))
    with pytest.raises(DataValidationError, match="missing group 'posterior'"):
        read_posterior(path)


def test_read_table_csv_and_gzip(tmp_path):
    df = pd.DataFrame({"customer_id": [1, 2], "date": ["1997-01-01", "1997-02-03"], "amount": [9.5, 0.0]})
    df.to_csv(tmp_path / "tx.csv", index=False)
    pd.testing.assert_frame_equal(read_table(tmp_path / "tx.csv"), df)
    with gzip.open(tmp_path / "tx.CSV.GZ", "wt") as fh:
        df.to_csv(fh, index=False)
    pd.testing.assert_frame_equal(read_table(tmp_path / "tx.CSV.GZ"), df)


def test_read_table_parquet(tmp_path):
    pytest.importorskip("pyarrow")
    df = pd.DataFrame({"customer_id": [1, 2], "frequency": [0.0, 3.0]})
    df.to_parquet(tmp_path / "s.parquet")
    pd.testing.assert_frame_equal(read_table(tmp_path / "s.parquet"), df)
    df.to_parquet(tmp_path / "s.pq")
    pd.testing.assert_frame_equal(read_table(tmp_path / "s.pq"), df)


def test_read_table_parquet_without_engine_is_a_clear_error(tmp_path):
    """Without pyarrow/fastparquet a .parquet input must fail as bad input (CLI: exit 2), not with ImportError."""
    try:
        import pyarrow  # noqa: F401

        pytest.skip("a parquet engine is installed")
    except ImportError:
        pass
    try:
        import fastparquet  # noqa: F401

        pytest.skip("a parquet engine is installed")
    except ImportError:
        pass
    path = tmp_path / "s.parquet"
    path.write_bytes(b"PAR1 not really")
    with pytest.raises(DataValidationError, match="(?i)parquet|pyarrow"):
        read_table(path)


def test_read_table_errors(tmp_path):
    with pytest.raises(DataValidationError, match="does not exist"):
        read_table(tmp_path / "missing.csv")
    bad = tmp_path / "binary.csv"
    bad.write_bytes(b"\xff\xfe\x00\x81\x00garbage\x00\n\x9c")
    with pytest.raises(DataValidationError, match="could not read"):
        read_table(bad)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataValidationError, match="could not read"):
        read_table(empty)
