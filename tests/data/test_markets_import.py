"""Contract specs into ``markets``: Binance exchangeInfo bodies and ccxt load_markets() dumps."""
from __future__ import annotations

import json
import math
from pathlib import Path

import ccxt
import pytest
import typer
from typer.testing import CliRunner

from backtest.cli.data import register
from data_loaders.errors import DataValidationError, ImportFormatError, ReplaceRefusedError
from data_loaders.markets_import import detect_shape, import_markets, read_markets
from data_loaders.schemas import SCHEMAS
from data_loaders.store import MarketStore
from data_loaders.symbols import unified_symbol
from tests.data.ccxt_replay import RECORDED, ReplayTransport

BTC = "BTC/USDT:USDT"
SERVER_TIME = 1_789_478_299_014  # serverTime of the recorded exchangeInfo body


def recorded_exchange_info() -> dict:
    """The recorded /fapi/v1/exchangeInfo response body (BTCUSDT, ETHUSDT)."""
    return json.loads((RECORDED / "binanceusdm/exchangeInfo.json").read_text())[0]["response"]["body"]


def sol_entry(*, liquidation_fee: bool = False) -> dict:
    """A third perpetual in Binance's exact entry shape, without built-in venue data."""
    entry = {"symbol": "SOLUSDT", "pair": "SOLUSDT", "contractType": "PERPETUAL", "status": "TRADING",
             "baseAsset": "SOL", "quoteAsset": "USDT", "marginAsset": "USDT", "pricePrecision": 4,
             "quantityPrecision": 0, "filters": [
                 {"filterType": "PRICE_FILTER", "minPrice": "0.4200", "maxPrice": "6857", "tickSize": "0.0100"},
                 {"filterType": "LOT_SIZE", "minQty": "1", "stepSize": "1", "maxQty": "1000000"},
                 {"filterType": "MIN_NOTIONAL", "notional": "5"}]}
    if liquidation_fee:
        entry["liquidationFee"] = "0.015000"
    return entry


def write(tmp_path: Path, data: object, name: str = "markets.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def ccxt_dump() -> dict:
    """``load_markets()`` of a real ccxt binanceusdm fed the recorded exchangeInfo (TICK_SIZE mode)."""
    exchange = ccxt.binanceusdm()
    ReplayTransport.from_folder(exchange, "binanceusdm").install()
    return json.loads(json.dumps(exchange.load_markets()))


@pytest.fixture()
def cli():
    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:
        """test root"""

    runner = CliRunner()
    return lambda *args: runner.invoke(app, ["data", *args], env={"COLUMNS": "220"})


def test_exchange_info_round_trips_through_the_store(tmp_path: Path) -> None:
    store = MarketStore(tmp_path / "store")
    result = import_markets(store, write(tmp_path, recorded_exchange_info()))
    assert (result.dataset, result.symbol, result.rows_read) == ("markets", "BTC/USDT:USDT,ETH/USDT:USDT", 2)
    assert result.write.rows_added == 2
    assert len(result.warnings) == 1 and "maker_fee/taker_fee stored as NaN (unknown)" in result.warnings[0]
    stored = store.read("markets", exchange="binanceusdm", symbol=BTC)
    assert stored.columns == SCHEMAS["markets"].column_names
    row = stored.row(0, named=True)
    assert row["effective_from"].timestamp() * 1000 == SERVER_TIME
    assert (row["base"], row["quote"], row["settle"], row["contract_type"], row["contract_size"]) == (
        "BTC", "USDT", "USDT", "linear", 1.0)
    assert (row["tick_size"], row["lot_size"], row["min_qty"], row["min_notional"]) == (0.1, 0.001, 0.001, 50.0)
    # no fees in an exchangeInfo body: stored as unknown (the run's loader fills them by date);
    # the clearance fee comes from the file
    assert math.isnan(row["maker_fee"]) and math.isnan(row["taker_fee"])
    assert row["liquidation_fee_rate"] == 0.0125
    eth = store.read("markets", exchange="binanceusdm", symbol="ETH/USDT:USDT").row(0, named=True)
    assert (eth["tick_size"], eth["min_notional"]) == (0.01, 20.0)


def test_native_ids_map_like_the_other_importers(tmp_path: Path) -> None:
    body = recorded_exchange_info()
    body["symbols"].append({**sol_entry(liquidation_fee=True), "symbol": "BTCUSDT_250328", "pair": "BTCUSDT",
                            "contractType": "CURRENT_QUARTER", "baseAsset": "BTC"})
    body["symbols"].append({"symbol": "OLDUSDT", "contractType": "", "baseAsset": "OLD", "quoteAsset": "USDT",
                            "marginAsset": "USDT", "filters": []})
    frame, warnings = read_markets(write(tmp_path, body))
    assert frame["symbol"].to_list() == ["BTC/USDT:USDT", "BTC/USDT:USDT-250328", "ETH/USDT:USDT"]
    assert unified_symbol("BTCUSDT", exchange="binanceusdm") == BTC
    assert warnings[0] == "1 entries without a contractType skipped (OLDUSDT)"
    assert len(warnings) == 2 and "stored as NaN (unknown)" in warnings[1]


def test_fees_the_file_lacks_are_stored_unknown_and_filled_by_date_at_run_time(tmp_path: Path) -> None:
    from backtest.venues.defaults import resolve_market

    body = recorded_exchange_info()
    for entry in body["symbols"]:
        del entry["liquidationFee"]
    body["symbols"].append(sol_entry())
    frame, warnings = read_markets(write(tmp_path, body), effective_from="2021-06-01")
    # the importer stores what the file says: no liquidation fee and no trading fees -> NaN
    assert all(math.isnan(r) for r in frame["liquidation_fee_rate"])
    assert all(math.isnan(f) for f in frame["maker_fee"].to_list() + frame["taker_fee"].to_list())
    assert len(warnings) == 2 and "SOL/USDT:USDT" in warnings[1] and "NaN" in warnings[1]
    # the NaN (unknown) rate is stored and read back as NaN, with the notes on the import
    store = MarketStore(tmp_path / "store")
    result = import_markets(store, write(tmp_path, body), effective_from="2021-06-01")
    assert result.warnings == warnings and result.rows_read == 3
    stored = store.read("markets", exchange="binanceusdm", symbol="SOL/USDT:USDT").row(0, named=True)
    assert math.isnan(stored["liquidation_fee_rate"]) and (stored["lot_size"], stored["min_qty"]) == (1.0, 1.0)
    # a run's one loader fills the unknown fields with the built-in values of its own date:
    # Binance's 2019-2020 clearance rates, BTC 0.3 %, other perpetuals 0.5 %
    run_start = 1_625_097_600_000  # 2021-07-01 00:00 UTC
    rates = {}
    for symbol in (BTC, "ETH/USDT:USDT"):
        rows = store.read("markets", exchange="binanceusdm", symbol=symbol).to_dicts()
        notes: list[str] = []
        spec = resolve_market("binanceusdm", symbol, rows, start_ms=run_start, end_ms=None, warnings=notes)
        rates[symbol] = spec.liquidation_fee_rate
    assert rates == {BTC: 0.003, "ETH/USDT:USDT": 0.005}


def test_ccxt_dump_from_ccxt_parsing_matches_the_exchange_info(tmp_path: Path) -> None:
    dump = ccxt_dump()
    assert dump[BTC]["precision"]["price"] == 0.1  # TICK_SIZE mode: a step, not decimals
    store = MarketStore(tmp_path / "store")
    result = import_markets(store, write(tmp_path, dump, "ccxt.json"), effective_from=SERVER_TIME)
    assert result.rows_read == 2 and result.write.rows_added == 2
    from_ccxt = store.read("markets", exchange="binanceusdm", symbol=BTC)
    # the same snapshot from exchangeInfo matches the ccxt rows value for value, except the
    # fees an exchangeInfo body does not carry (unknown there): importing it over the ccxt rows
    # would replace known fees by unknown ones, so it is refused and the store is unchanged
    info, _ = read_markets(write(tmp_path, recorded_exchange_info()))
    fee_columns = ["maker_fee", "taker_fee"]
    assert info.drop(fee_columns).equals(from_ccxt.vstack(
        store.read("markets", exchange="binanceusdm", symbol="ETH/USDT:USDT")).drop(fee_columns))
    with pytest.raises(ReplaceRefusedError, match=r"maker_fee 0.0002 -> nan"):
        import_markets(store, write(tmp_path, recorded_exchange_info()))
    assert store.read("markets", exchange="binanceusdm", symbol=BTC).equals(from_ccxt)


def test_ccxt_decimal_places_dump_and_spot_markets(tmp_path: Path) -> None:
    dump = {
        "BTC/USD:BTC": {"symbol": "BTC/USD:BTC", "base": "BTC", "quote": "USD", "settle": "BTC", "contract": True,
                        "linear": False, "inverse": True, "contractSize": 100, "maker": 0.0001, "taker": 0.0004,
                        "precision": {"price": 1, "amount": 0}, "limits": {"amount": {"min": 1}, "cost": {"min": None}},
                        "info": {}},
        "BTC/USDT": {"symbol": "BTC/USDT", "base": "BTC", "quote": "USDT", "spot": True, "contract": False,
                     "precision": {"price": 2, "amount": 5}, "limits": {}, "info": {}},
    }
    frame, warnings = read_markets(write(tmp_path, dump), exchange="binancecoinm", effective_from="2024-01-01")
    row = frame.row(0, named=True)
    assert frame.height == 1 and row["symbol"] == "BTC/USD:BTC"
    assert (row["contract_type"], row["contract_size"], row["tick_size"], row["lot_size"]) == (
        "inverse", 100.0, 0.1, 1.0)
    assert (row["maker_fee"], row["taker_fee"]) == (0.0001, 0.0004)  # from the file
    # no notional minimum in the dump: 0 (none; the store refuses NaN there), fee unknown: NaN
    assert row["min_notional"] == 0.0 and math.isnan(row["liquidation_fee_rate"])
    assert warnings[0] == "1 non-contract (spot/option) market(s) skipped"
    assert "liquidation fee not in the file" in warnings[1]
    forced, _ = read_markets(write(tmp_path, dump), exchange="binancecoinm", effective_from="2024-01-01",
                             precision_mode=4)
    assert forced["tick_size"].to_list() == [1.0]


def test_effective_from_is_required_without_server_time(tmp_path: Path) -> None:
    with pytest.raises(ImportFormatError, match=r"ccxt.json: .*pass --effective-from YYYY-MM-DD"):
        read_markets(write(tmp_path, ccxt_dump(), "ccxt.json"))
    body = recorded_exchange_info()
    del body["serverTime"]
    with pytest.raises(ImportFormatError, match="no date; pass --effective-from"):
        read_markets(write(tmp_path, body))
    frame, _ = read_markets(write(tmp_path, body), effective_from="2026-01-01")
    assert frame["effective_from"][0].isoformat() == "2026-01-01T00:00:00+00:00"


def test_unknown_and_malformed_files_name_file_expectation_and_fix(tmp_path: Path) -> None:
    assert detect_shape({"hello": 1}) == "unknown" and detect_shape([1, 2]) == "unknown"
    with pytest.raises(ImportFormatError, match=r"odd.json: expected a Binance /fapi/v1/exchangeInfo body .* "
                                                r"found a JSON dict with keys \['hello'\]; save the exchange"):
        read_markets(write(tmp_path, {"hello": 1}, "odd.json"))
    truncated = tmp_path / "cut.json"
    truncated.write_text(json.dumps(recorded_exchange_info())[:500])
    with pytest.raises(ImportFormatError, match=r"cut.json: expected .* found invalid JSON"):
        read_markets(truncated)
    body = recorded_exchange_info()
    body["symbols"][0]["filters"] = [f for f in body["symbols"][0]["filters"] if f["filterType"] != "LOT_SIZE"]
    with pytest.raises(ImportFormatError, match=r"symbol BTCUSDT: expected the LOT_SIZE filter"):
        read_markets(write(tmp_path, body))
    body = recorded_exchange_info()
    del body["symbols"][1]["quoteAsset"]
    with pytest.raises(ImportFormatError, match=r"exchange_info market entry lacks a field .*quoteAsset"):
        read_markets(write(tmp_path, body))
    with pytest.raises(ImportFormatError, match=r"expected market\(s\) XRP/USDT:USDT, found only BTC/USDT:USDT"):
        read_markets(write(tmp_path, recorded_exchange_info()), symbols=["XRPUSDT"])


def test_bad_values_are_refused_and_nothing_is_written(tmp_path: Path) -> None:
    store = MarketStore(tmp_path / "store")
    import_markets(store, write(tmp_path, recorded_exchange_info()))
    before = store.read("markets", exchange="binanceusdm", symbol=BTC)
    body = recorded_exchange_info()
    body["serverTime"] += 1
    body["symbols"][0]["filters"][0]["tickSize"] = "0"
    with pytest.raises(DataValidationError, match="bad_price"):
        import_markets(store, write(tmp_path, body))
    assert store.read("markets", exchange="binanceusdm", symbol=BTC).equals(before)


def test_reimport_is_idempotent_and_a_new_snapshot_adds_a_version(tmp_path: Path) -> None:
    store = MarketStore(tmp_path / "store")
    path = write(tmp_path, recorded_exchange_info())
    import_markets(store, path)
    again = import_markets(store, path)
    assert (again.write.rows_added, again.write.rows_replaced, again.write.rows_unchanged) == (0, 0, 2)
    assert store.read("markets", exchange="binanceusdm", symbol=BTC).height == 1
    later = recorded_exchange_info()
    later["serverTime"] += 86_400_000
    later["symbols"][0]["filters"][0]["tickSize"] = "0.50"
    import_markets(store, write(tmp_path, later, "later.json"))
    versions = store.read("markets", exchange="binanceusdm", symbol=BTC)
    assert versions["tick_size"].to_list() == [0.1, 0.5]


def test_cli_auto_detects_market_files_and_round_trips(tmp_path: Path, cli) -> None:
    store = str(tmp_path / "store")
    info = write(tmp_path, recorded_exchange_info(), "exchangeInfo.json")
    dump = write(tmp_path, ccxt_dump(), "ccxt_markets.json")
    result = cli("import", "--store", store, str(info))
    assert result.exit_code == 0, result.output
    assert "imported exchangeInfo.json: markets binanceusdm BTC/USDT:USDT,ETH/USDT:USDT: 2 rows read, 2 added" \
        in result.output
    result = cli("import", "--store", store, "--effective-from", "2026-01-01", "--symbol", "ETHUSDT", str(dump))
    assert result.exit_code == 0, result.output
    assert "markets binanceusdm ETH/USDT:USDT: 1 rows read, 1 added, 0 replaced" in result.output
    result = cli("query", "--store", store,
                 "select symbol, count(*) n, min(tick_size) t from markets group by 1 order by 1")
    assert "BTC/USDT:USDT │ 1 │ 0.1" in result.output and "ETH/USDT:USDT │ 2 │ 0.01" in result.output
    stored = MarketStore(tmp_path / "store").read("markets", exchange="binanceusdm", symbol="ETH/USDT:USDT")
    assert stored["min_notional"].to_list() == [20.0, 20.0]


def test_cli_kind_markets_errors_keep_the_store(tmp_path: Path, cli) -> None:
    store = str(tmp_path / "store")
    dump = write(tmp_path, ccxt_dump(), "ccxt_markets.json")
    result = cli("import", "--store", store, "--kind", "markets", str(dump))
    assert result.exit_code == 1
    assert "ccxt_markets.json" in result.output and "--effective-from" in result.output
    tiers = write(tmp_path, [{"symbol": "BTCUSDT", "brackets": []}], "tiers.json")
    result = cli("import", "--store", store, "--kind", "markets", str(tiers))
    assert result.exit_code == 1 and "expected a Binance /fapi/v1/exchangeInfo body" in result.output
