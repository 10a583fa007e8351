"""Real Binance data from ../shared imported through the generic and tier importers, checked via DuckDB."""
from __future__ import annotations

from pathlib import Path

import pytest

from data_loaders.generic import import_generic
from data_loaders.quality import validate_store
from data_loaders.store import MarketStore
from data_loaders.tiers_import import import_tiers

pytestmark = pytest.mark.shared

BTC = "BTC/USDT:USDT"


@pytest.fixture(scope="module")
def store(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> MarketStore:
    store = MarketStore(tmp_path_factory.mktemp("shared") / "store")
    import_generic(store, shared_data / "klines/long/binance_um_BTCUSDT_1h_2019-09-08_2026-05-17.parquet")
    import_generic(store, shared_data / "mark/binance_um_BTCUSDT_markprice_1h_2019-12-23_2026-05-17.parquet",
                   price_type="mark")
    import_generic(store, shared_data / "funding/binance_um_BTCUSDT_funding_8h.parquet")
    import_tiers(store, shared_data / "margin/binance_um_leverage_brackets_BTCUSDT_ETHUSDT_2021-2024.json")
    return store


def test_black_thursday_last_vs_mark_low(store: MarketStore) -> None:
    rows = store.connect().execute("""
        select price_type, min(low) from ohlcv
        where symbol = 'BTC/USDT:USDT' and timeframe = '1h'
          and ts = TIMESTAMPTZ '2020-03-13 02:00:00+00'
        group by 1 order by 1""").fetchall()
    assert rows[0] == ("last", 3621.81)
    assert rows[1][0] == "mark" and round(rows[1][1], 2) == 3801.83
    # that hour holds the lowest last-price low of March 2020
    (low_hour,) = store.connect().execute("""
        select ts from ohlcv where price_type = 'last' and ts >= '2020-03-01' and ts < '2020-04-01'
        order by low limit 1""").fetchone()
    assert low_hour.isoformat() == "2020-03-13T02:00:00+00:00"


def test_store_holds_every_row_without_gaps(store: MarketStore) -> None:
    listing = {(r["dataset"], r["price_type"]): r for r in store.listing().iter_rows(named=True)}
    assert listing[("ohlcv", "last")]["rows"] == 58_622 and listing[("ohlcv", "last")]["gaps"] == 0
    assert listing[("ohlcv", "mark")]["rows"] == 56_083
    funding = listing[("funding", None)]
    assert funding["rows"] == 7_457 and funding["gaps"] == 0  # no missing 8h settlement


def test_funding_is_every_8h(store: MarketStore) -> None:
    spacing = store.connect().execute("""
        select step, count(*) from (
            select epoch(ts) - lag(epoch(ts)) over (order by ts) as step
            from funding where symbol = 'BTC/USDT:USDT')
        where step is not null group by step""").fetchall()
    assert spacing == [(28_800.0, 7_456)]
    frame = store.read("funding", exchange="binanceusdm", symbol=BTC)
    assert frame["interval_hours"].unique().to_list() == [8.0]
    assert (frame["rate"].min(), frame["rate"].max()) == (-0.003, 0.003)


def test_dated_leverage_tiers(store: MarketStore) -> None:
    con = store.connect()
    asof = """
        select tier, max_leverage, notional_floor, notional_cap, maint_margin_rate, maint_amount
        from risk_tiers where symbol = ? and effective_from = (
            select max(effective_from) from risk_tiers where symbol = ? and effective_from <= ?::TIMESTAMPTZ)
        order by tier"""
    before_ftx = con.execute(asof, [BTC, BTC, "2022-11-01"]).fetchall()
    after_ftx = con.execute(asof, [BTC, BTC, "2022-12-01"]).fetchall()
    assert before_ftx[2][:2] == (3, 50.0) and after_ftx[2][:2] == (3, 25.0)  # cut after FTX
    first = con.execute(asof, [BTC, BTC, "2022-03-01"]).fetchall()
    assert first[3] == (4, 20.0, 1_000_000.0, 7_500_000.0, 0.025, 16_300.0)
    assert len(con.execute(asof, ["ETH/USDT:USDT", "ETH/USDT:USDT", "2024-03-01"]).fetchall()) == 11
    latest = con.execute(asof, [BTC, BTC, "2030-01-01"]).fetchall()
    assert len(latest) == 12 and latest[0][:2] == (1, 125.0)
    versions = con.execute("select count(distinct effective_from) from risk_tiers where symbol = ?", [BTC]).fetchone()
    assert versions == (10,)


def test_validate_reports_mark_coverage(store: MarketStore) -> None:
    reports, problems = validate_store(store, start="2020-03-01", end="2020-04-01")
    assert problems == [] and all(r.ok for r in reports)
    coverage = {r.subject: r for r in reports if r.subject.startswith("coverage")}
    assert coverage[f"coverage: mark 1h binanceusdm {BTC}"].issues == ()
    assert coverage[f"coverage: funding binanceusdm {BTC}"].issues == ()
    early, _ = validate_store(store, start="2019-10-01", end="2019-11-01")
    mark = next(r for r in early if r.subject.startswith("coverage: mark"))
    assert mark.issues[0].count == 31 * 24  # mark candles only start 2019-12-23


def test_issue9_mark_file_without_flag_never_replaces_last_candles(shared_data: Path, tmp_path: Path) -> None:
    """Issue 9: the mark-price file imported without --price-type replaced 56,083 last-price rows."""
    from tests.data.trust_helpers import data_cli, folder_hash

    root = tmp_path / "store"
    cli = data_cli()
    klines = shared_data / "klines/long/binance_um_BTCUSDT_1h_2019-09-08_2026-05-17.parquet"
    assert cli("import", "--store", root, klines).exit_code == 0
    last = MarketStore(root).read("ohlcv", exchange="binanceusdm", symbol=BTC, timeframe="1h")
    result = cli("import", "--store", root, shared_data / "mark/binance_um_BTCUSDT_markprice_1h_2019-12-23_2026-05-17.parquet")
    assert result.exit_code == 0, result.output
    assert " mark: " in result.output and "0 replaced" in result.output
    store = MarketStore(root)
    assert store.read("ohlcv", exchange="binanceusdm", symbol=BTC, timeframe="1h").equals(last)
    assert last["volume"].null_count() == 0
    mark = store.read("ohlcv", exchange="binanceusdm", symbol=BTC, timeframe="1h", price_type="mark")
    assert mark.height > 50_000 and mark["volume"].null_count() == mark.height
    # the same file forced in as last prices is refused, naming how many rows would change
    before = folder_hash(root)
    forced = cli("import", "--store", root, "--price-type", "last",
                 shared_data / "mark/binance_um_BTCUSDT_markprice_1h_2019-12-23_2026-05-17.parquet")
    assert forced.exit_code == 1 and "stored ohlcv row(s)" in forced.output and "--replace" in forced.output
    assert folder_hash(root) == before
