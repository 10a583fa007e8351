"""Run directories written in the CONTRACTS §6 format for the report tests."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.reports.run_fixture import MINUTE_MS, RunFixture, write_run_dir

XSS = "<script>alert(1)</script>"


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> RunFixture:
    """1,500 hourly bars, 10x, two crashes, two liquidations, with bars.parquet."""
    return write_run_dir(tmp_path_factory.mktemp("runs") / "sma-10x", leverage=10.0)


@pytest.fixture(scope="session")
def year_run(tmp_path_factory: pytest.TempPathFactory) -> RunFixture:
    """The reference year: 525,600 one-minute bars (bars.parquet included)."""
    return write_run_dir(tmp_path_factory.mktemp("year") / "year-1m", n_bars=525_600,
                         interval_ms=MINUTE_MS)


@pytest.fixture(scope="session")
def hostile_run(tmp_path_factory: pytest.TempPathFactory) -> RunFixture:
    """A run whose strategy, parameters, symbol and warnings carry HTML/JS."""
    return write_run_dir(
        tmp_path_factory.mktemp("hostile") / "hostile", strategy=XSS,
        params={"note": "<img src=x onerror=alert(2)>", "tag": "</script><script>alert(3)</script>"},
        symbol="BTC/USDT:USDT", with_bars=False, with_attribution=False,
        quality_warnings=["<!-- </script><script>alert(4)</script>", "gap & <b>bold</b>"])


@pytest.fixture(scope="session")
def ladder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sweep directory: the same strategy at 2, 5, 10, 20 and 50x."""
    root = tmp_path_factory.mktemp("sweep")
    for lev in (2, 5, 10, 20, 50):
        write_run_dir(root / f"hold-{lev}x", leverage=float(lev), strategy="hold",
                      params={"side": "long"}, n_bars=800)
    return root
