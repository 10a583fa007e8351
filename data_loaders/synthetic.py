"""Embedded default data: a deterministic synthetic USDT-margined perpetual.

The generator builds one-minute last-price, mark-price and index candles plus 8-hourly funding
for a linear perpetual in the canonical schemas of ``docs/CONTRACTS.md`` §3 (exchange
``binanceusdm``, so the built-in Binance tier tables apply). It exists so that the demo, the
tests and new users have realistic data without a download; it is not a forecast of anything.

Model (one step = one minute; details and limits in ``docs/synthetic.md``):

* index log-returns: GARCH(1,1) variance with standardized Student-t innovations, an intraday
  volatility pattern and rare jumps; a correlated market loads on its driver's returns with a
  beta plus its own GARCH residual;
* premium ``p`` of the last price over the index: a slow AR(1) sentiment component plus a fast
  AR(1) noise component; ``last = index * exp(p)``;
* mark price: ``mark = index * exp(EMA_30(p))`` (Binance's "index plus moving-average basis"),
  hence smaller wicks than the last price;
* intrabar extremes: exact Brownian-bridge maximum/minimum draws given the bar's open, close
  and volatility; the last price additionally gets rare liquidation-cascade overshoots;
* funding every 8 h at 00/08/16 UTC: ``F = P + clamp(I - P, -0.05%, +0.05%)`` clamped to
  ``±cap``, where ``P`` is the mean one-minute premium ``last/index - 1`` over the interval;
* a crash day: the index falls by a configurable fraction in minutes, the perp trades at a
  discount, the last price wicks far below the mark, then a partial rebound.

All randomness comes from ``numpy.random.Generator(PCG64(SeedSequence([seed, crc32(symbol)])))``:
the same arguments give identical frames, in any process, without global state.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from data_loaders.errors import SchemaError
from data_loaders.schemas import get_schema, timeframe_ms, to_ms
from data_loaders.synthetic_kernels import (
    _simulate,
)
from data_loaders.synthetic_model import (
    DAY_MINUTES,
    FUNDING_INTERVAL_MINUTES,
    MINUTE_MS,
    MODEL_PRESETS,
    SyntheticModel,
    SyntheticPath,
    funding_rate_from_premium,
)

if TYPE_CHECKING:
    from data_loaders.store import MarketStore, WriteResult

__all__ = [
    "EXCHANGE",
    "SyntheticModel",
    "SyntheticPath",
    "SyntheticMarket",
    "MODEL_PRESETS",
    "generate_perpetual",
    "funding_rate_from_premium",
    "timeframe_minutes",
    "demo_dataset",
    "engine_frames",
    "resample_ohlcv",
    "write_to_store",
]

EXCHANGE = "binanceusdm"
"""Exchange id of every synthetic frame: Binance USDⓈ-M, so its built-in tier tables apply."""

_SYMBOL_RE = re.compile(r"^[A-Z0-9]+/USDT:USDT$")




@dataclass(frozen=True, eq=False)
class SyntheticMarket:
    """A generated perpetual: canonical frames plus the arguments that produced them.

    Attributes
    ----------
    symbol : str
        ccxt unified symbol, e.g. ``"BTC/USDT:USDT"``.
    exchange : str
        Always ``"binanceusdm"``.
    timeframe : str
        Candle timeframe of ``last``, ``mark`` and ``index``.
    start_ms : int
        Open time of the first candle (UTC, ms since the epoch).
    days : int
        Length of the data (days).
    crash_day : int | None
        Zero-based day of the crash (``None``: no crash).
    seed : int
        Seed of the random stream.
    s0 : float
        Index price at ``start`` (USDT per base unit).
    correlated_with : str | None
        Symbol of the driver market, if any.
    model : SyntheticModel
        Model parameters used.
    last, mark, index : polars.DataFrame
        Canonical ``ohlcv`` frames (price_type ``last``/``mark``/``index``; volume in base
        units for ``last``, null otherwise).
    funding : polars.DataFrame
        Canonical ``funding`` frame, settlements in ``[start, end)``.
    path : SyntheticPath
        One-minute driver arrays (for ``correlated_with``).
    """

    symbol: str
    exchange: str
    timeframe: str
    start_ms: int
    days: int
    crash_day: int | None
    seed: int
    s0: float
    correlated_with: str | None
    model: SyntheticModel
    last: pl.DataFrame = field(repr=False)
    mark: pl.DataFrame = field(repr=False)
    index: pl.DataFrame = field(repr=False)
    funding: pl.DataFrame = field(repr=False)
    path: SyntheticPath = field(repr=False)

    @property
    def end_ms(self) -> int:
        """End of the data, exclusive (UTC, ms since the epoch)."""
        return self.start_ms + self.days * DAY_MINUTES * MINUTE_MS

    @property
    def crash_start_ms(self) -> int | None:
        """Instant the crash's fall starts (UTC ms), ``None`` without a crash."""
        if self.crash_day is None:
            return None
        return self.start_ms + (self.crash_day * DAY_MINUTES + self.model.crash_minute_of_day) * MINUTE_MS

    def ohlcv(self) -> pl.DataFrame:
        """The three candle frames stacked (last, mark, index) in the canonical schema."""
        return pl.concat([self.last, self.mark, self.index], how="vertical")


# --------------------------------------------------------------------------------------------
# argument parsing


def timeframe_minutes(timeframe: str) -> int:
    """Minutes in a ccxt timeframe string (``"1m"``, ``"5m"``, ``"1h"``, ``"1d"`` ...).

    Raises
    ------
    ValueError
        When the string is not ``<int><m|h|d>`` or does not divide a day evenly.
    """
    try:
        length_ms = timeframe_ms(timeframe)
    except SchemaError:
        length_ms = 0
    minutes, rest = divmod(length_ms, MINUTE_MS)
    if rest or minutes <= 0 or DAY_MINUTES % minutes != 0:
        raise ValueError(
            f"timeframe: expected a ccxt timeframe that divides a day (1m, 3m, 5m, 15m, 30m, "
            f"1h, 2h, 4h, 6h, 8h, 12h, 1d), found {timeframe!r}; pass one of those"
        )
    return minutes


def _parse_start(start: str | date | datetime | int) -> int:
    if isinstance(start, date) and not isinstance(start, datetime):
        start = datetime(start.year, start.month, start.day, tzinfo=timezone.utc)
    try:
        start_ms = to_ms(start)
    except SchemaError as exc:
        raise ValueError(f"start: {exc}") from exc
    if start_ms % MINUTE_MS:
        raise ValueError(
            f"start: expected a whole minute (UTC), found {start_ms} ms "
            f"({start_ms % MINUTE_MS} ms past the minute); round it to the minute"
        )
    return start_ms


def _resolve_model(symbol: str, model: SyntheticModel | None) -> SyntheticModel:
    if not isinstance(symbol, str) or not _SYMBOL_RE.match(symbol):
        raise ValueError(
            f"symbol: expected a ccxt unified USDT-margined perpetual like 'BTC/USDT:USDT', "
            f"found {symbol!r}"
        )
    if model is not None:
        return model
    if symbol not in MODEL_PRESETS:
        raise ValueError(
            f"symbol {symbol!r}: no built-in synthetic model (presets: "
            f"{', '.join(sorted(MODEL_PRESETS))}); pass model=SyntheticModel(...) for it"
        )
    return MODEL_PRESETS[symbol]


# --------------------------------------------------------------------------------------------
# the simulation


def _ts_series(ts_ms: np.ndarray) -> pl.Series:
    return pl.Series("ts", ts_ms, dtype=pl.Int64).cast(pl.Datetime("ms", "UTC"))


def _ohlcv_frame(symbol: str, timeframe: str, price_type: str, ts_ms: np.ndarray,
                 ohlc: tuple[np.ndarray, ...], volume: np.ndarray | None) -> pl.DataFrame:
    n = ts_ms.size
    frame = pl.DataFrame(
        {
            "exchange": pl.repeat(EXCHANGE, n, eager=True, dtype=pl.String),
            "symbol": pl.repeat(symbol, n, eager=True, dtype=pl.String),
            "timeframe": pl.repeat(timeframe, n, eager=True, dtype=pl.String),
            "price_type": pl.repeat(price_type, n, eager=True, dtype=pl.String),
            "ts": _ts_series(ts_ms),
            "open": ohlc[0], "high": ohlc[1], "low": ohlc[2], "close": ohlc[3],
            "volume": pl.Series("volume", volume, dtype=pl.Float64) if volume is not None
            else pl.repeat(None, n, eager=True, dtype=pl.Float64),
        }
    )
    return frame.select([pl.col(c).cast(t) for c, t in get_schema("ohlcv").columns])


def _aggregate(ts_ms: np.ndarray, o: np.ndarray, h: np.ndarray, l: np.ndarray,  # noqa: E741
               c: np.ndarray, v: np.ndarray | None,
               k: int) -> tuple[np.ndarray, tuple[np.ndarray, ...], np.ndarray | None]:
    """Aggregate a gapless 1m grid into bars of k minutes (k divides the length)."""
    if k == 1:
        return ts_ms, (o, h, l, c), v
    shape = (-1, k)
    agg = (o.reshape(shape)[:, 0], h.reshape(shape).max(axis=1), l.reshape(shape).min(axis=1),
           c.reshape(shape)[:, -1])
    vol = None if v is None else np.round(v.reshape(shape).sum(axis=1), 8)
    return ts_ms[::k], agg, vol


def _check_arguments(*, symbol: str, start_ms: int, k: int, timeframe: str, days: Any,
                     crash_day: Any, seed: Any, s0: Any, model: SyntheticModel,
                     driver: Any) -> None:
    def is_int(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    if start_ms % (k * MINUTE_MS):
        raise ValueError(
            f"start: expected a multiple of the {timeframe} timeframe (UTC), found "
            f"{datetime.fromtimestamp(start_ms / 1000, timezone.utc).isoformat()}; align start to a "
            f"{timeframe} bar open"
        )
    if not is_int(days) or days < 1:
        raise ValueError(f"days: expected an integer >= 1, found {days!r}")
    if crash_day is not None and (not is_int(crash_day) or not 0 <= crash_day < days):
        raise ValueError(
            f"crash_day: expected None or an integer day in [0, {days - 1}] (days={days}), "
            f"found {crash_day!r}; pick a day inside the data or None for no crash"
        )
    if not is_int(seed) or seed < 0:
        raise ValueError(f"seed: expected an integer >= 0, found {seed!r}")
    if not (isinstance(s0, (int, float)) and math.isfinite(s0) and s0 >= 100 * model.tick_size):
        raise ValueError(
            f"s0: expected a finite price in USDT of at least 100 ticks "
            f"({100 * model.tick_size:g} at tick_size={model.tick_size:g}), found {s0!r}"
        )
    if driver is None:
        return
    if not isinstance(driver, SyntheticMarket):
        raise TypeError(f"correlated_with: expected a SyntheticMarket, found {type(driver).__name__}")
    if driver.start_ms != start_ms or driver.days != days:
        raise ValueError(
            f"correlated_with: driver {driver.symbol} covers start_ms={driver.start_ms}, "
            f"days={driver.days}; {symbol} asks for start_ms={start_ms}, days={days}; generate "
            f"both on the same start and days"
        )
    if driver.symbol == symbol:
        raise ValueError(f"correlated_with: a market cannot be correlated with itself ({symbol})")


def generate_perpetual(
    *,
    symbol: str = "BTC/USDT:USDT",
    start: str | date | datetime | int = "2024-03-01",
    days: int = 30,
    crash_day: int | None = 20,
    seed: int = 7,
    s0: float = 60_000.0,
    timeframe: str = "1m",
    correlated_with: SyntheticMarket | None = None,
    model: SyntheticModel | None = None,
) -> SyntheticMarket:
    """Generate a deterministic synthetic USDT-margined perpetual.

    Parameters
    ----------
    symbol : str
        ccxt unified symbol; ``BTC/USDT:USDT`` and ``ETH/USDT:USDT`` have built-in models.
    start : str, date, datetime or int
        Open time of the first candle (UTC; ISO string, naive datetimes are UTC, or epoch ms).
    days : int
        Length in days (>= 1).
    crash_day : int or None
        Zero-based day of the crash event (``None`` for none); its fall starts at
        ``model.crash_minute_of_day`` UTC.
    seed : int
        Seed (>= 0); the stream also depends on the symbol, so BTC and ETH differ.
    s0 : float
        Index price at ``start`` (USDT per base unit).
    timeframe : str
        Candle timeframe; the model runs at 1m and aggregates (must divide a day).
    correlated_with : SyntheticMarket or None
        Driver market (same start and days): returns load on its one-minute returns with
        ``model.beta`` and a residual sized for ``model.correlation``.
    model : SyntheticModel or None
        Parameters; default the symbol's preset in ``MODEL_PRESETS``.

    Returns
    -------
    SyntheticMarket
        Frames ``last``, ``mark``, ``index`` (canonical ohlcv) and ``funding`` (canonical).

    Raises
    ------
    ValueError
        On an unknown symbol without ``model``, a bad timeframe, a start not on a bar open,
        ``days < 1``, a crash day outside the data, ``s0`` below 100 ticks or a driver on
        another time grid.
    TypeError
        When ``correlated_with`` is not a ``SyntheticMarket``.
    """
    resolved = _resolve_model(symbol, model)
    k = timeframe_minutes(timeframe)
    start_ms = _parse_start(start)
    _check_arguments(symbol=symbol, start_ms=start_ms, k=k, timeframe=timeframe, days=days,
                     crash_day=crash_day, seed=seed, s0=s0, model=resolved, driver=correlated_with)
    sim = _simulate(
        symbol=symbol, start_ms=start_ms, days=days, crash_day=crash_day, seed=seed,
        s0=float(s0), model=resolved, driver=correlated_with,
    )
    ts_1m = start_ms + np.arange(days * DAY_MINUTES, dtype=np.int64) * MINUTE_MS
    frames = {}
    for price_type in ("last", "mark", "index"):
        arrays = sim[price_type]
        volume = arrays[4] if price_type == "last" else None
        ts, ohlc, vol = _aggregate(ts_1m, *arrays[:4], volume, k)
        frames[price_type] = _ohlcv_frame(symbol, timeframe, price_type, ts, ohlc, vol)
    settle_ts, rate, mark_at = sim["funding"]
    funding = pl.DataFrame(
        {
            "exchange": pl.repeat(EXCHANGE, settle_ts.size, eager=True, dtype=pl.String),
            "symbol": pl.repeat(symbol, settle_ts.size, eager=True, dtype=pl.String),
            "ts": _ts_series(settle_ts),
            "rate": rate,
            "interval_hours": np.full(settle_ts.size, FUNDING_INTERVAL_MINUTES / 60.0),
            "mark_price": mark_at,
        }
    ).select([pl.col(c).cast(t) for c, t in get_schema("funding").columns])
    return SyntheticMarket(
        symbol=symbol, exchange=EXCHANGE, timeframe=timeframe, start_ms=start_ms, days=days,
        crash_day=crash_day, seed=seed, s0=float(s0),
        correlated_with=None if correlated_with is None else correlated_with.symbol,
        model=resolved, last=frames["last"], mark=frames["mark"], index=frames["index"],
        funding=funding, path=sim["path"],
    )


def demo_dataset(seed: int = 7) -> dict[str, SyntheticMarket]:
    """The embedded demo data: BTC and ETH perpetuals, 30 days of 1m from 2024-03-01.

    BTC starts at 60,000 USDT, ETH at 3,400 USDT and is correlated with BTC (about 0.8);
    both crash on day 20 (2024-03-21, 13:30 UTC), ETH deeper.

    Parameters
    ----------
    seed : int
        Seed of both markets.

    Returns
    -------
    dict[str, SyntheticMarket]
        Keyed by symbol: ``"BTC/USDT:USDT"``, ``"ETH/USDT:USDT"``.
    """
    btc = generate_perpetual(symbol="BTC/USDT:USDT", seed=seed, s0=60_000.0)
    eth = generate_perpetual(symbol="ETH/USDT:USDT", seed=seed, s0=3_400.0, correlated_with=btc)
    return {btc.symbol: btc, eth.symbol: eth}


def engine_frames(market: SyntheticMarket) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The engine's bar and funding frames of a market (CONTRACTS §8).

    Parameters
    ----------
    market : SyntheticMarket
        A generated market.

    Returns
    -------
    bars : polars.DataFrame
        ``ts`` (Datetime ms UTC, bar open), ``open high low close`` (last price, USDT),
        ``volume`` (base units), ``mark_open mark_high mark_low mark_close`` (USDT).
    funding : polars.DataFrame
        ``ts`` (settlement), ``rate`` (fraction per interval, + = longs pay),
        ``interval_hours``, ``mark_price`` (USDT).
    """
    last = market.last.select("ts", "open", "high", "low", "close", "volume")
    mark = market.mark.select(
        "ts",
        pl.col("open").alias("mark_open"), pl.col("high").alias("mark_high"),
        pl.col("low").alias("mark_low"), pl.col("close").alias("mark_close"),
    )
    bars = last.join(mark, on="ts", how="inner", maintain_order="left")
    if bars.height != market.last.height:
        raise ValueError(
            f"engine_frames: last and mark candles of {market.symbol} do not share timestamps "
            f"({market.last.height} last rows, {market.mark.height} mark rows, {bars.height} joined)"
        )
    funding = market.funding.select("ts", "rate", "interval_hours", "mark_price")
    return bars, funding


def resample_ohlcv(frame: pl.DataFrame, timeframe: str) -> pl.DataFrame:
    """Resample a canonical ohlcv frame to a coarser timeframe (bars aligned to the epoch).

    Open is the first open, high the max, low the min, close the last close, volume the sum
    (null stays null for mark/index). Works per (exchange, symbol, price_type).

    Parameters
    ----------
    frame : polars.DataFrame
        Canonical ``ohlcv`` rows of a single timeframe.
    timeframe : str
        Target timeframe; a whole multiple of the source timeframe.
    """
    target = timeframe_minutes(timeframe)
    sources = frame["timeframe"].unique().to_list()
    if len(sources) != 1:
        raise ValueError(f"resample_ohlcv: expected one source timeframe, found {sorted(sources)}")
    source = timeframe_minutes(sources[0])
    if target % source:
        raise ValueError(
            f"resample_ohlcv: cannot build {timeframe} from {sources[0]} candles; the target "
            f"must be a whole multiple of the source timeframe"
        )
    out = (
        frame.sort("exchange", "symbol", "price_type", "ts")
        .group_by_dynamic("ts", every=f"{target}m", closed="left", label="left",
                          group_by=["exchange", "symbol", "price_type"])
        .agg(
            pl.col("open").first(), pl.col("high").max(), pl.col("low").min(), pl.col("close").last(),
            pl.col("volume").sum().alias("volume"), pl.col("volume").is_null().all().alias("_no_volume"),
        )
        .with_columns(
            pl.lit(timeframe).alias("timeframe"),
            pl.when(pl.col("_no_volume")).then(None).otherwise(pl.col("volume")).alias("volume"),
        )
    )
    columns = [pl.col(c).cast(t) for c, t in get_schema("ohlcv").columns]
    return out.select(columns).sort("symbol", "price_type", "ts")


def write_to_store(
    store: MarketStore,
    markets: Mapping[str, SyntheticMarket] | Iterable[SyntheticMarket],
    *,
    source: str | None = None,
    timeframes: tuple[str, ...] = ("1m", "5m", "1h"),
) -> list[WriteResult]:
    """Write synthetic markets into a ``MarketStore``: candles of every price type, and funding.

    Each market's 1m candles (last, mark, index) are stored together with their resamples to
    the other ``timeframes``; its funding goes to the ``funding`` dataset. Writes go through
    ``store.write`` (validated, merged, atomic), one ``ohlcv`` and one ``funding`` write per
    market, so a second call with the same data adds nothing.

    Parameters
    ----------
    store : data_loaders.store.MarketStore
        Target store.
    markets : mapping or iterable of SyntheticMarket
        What ``demo_dataset`` returns, or markets.
    source : str or None
        Provenance label recorded in the store's manifest; must start with ``"synthetic"``
        (the marker that this data is generated, not from an exchange). Default
        ``"synthetic:seed=<seed>"`` of each market.
    timeframes : tuple of str
        Candle timeframes to store; each a whole multiple of the market's own timeframe.

    Returns
    -------
    list of data_loaders.store.WriteResult
        Per market: the ``ohlcv`` write then the ``funding`` write.

    Raises
    ------
    ValueError
        On a source label that does not start with ``synthetic`` or a timeframe finer than
        (or not a multiple of) a market's timeframe; nothing is written then.
    """
    items = list(markets.values()) if isinstance(markets, Mapping) else list(markets)
    if source is not None and not (isinstance(source, str) and source.startswith("synthetic")):
        raise ValueError(
            f"source: expected a label starting with 'synthetic' (marks generated data), "
            f"found {source!r}; e.g. 'synthetic:seed=7'"
        )
    batches = []
    for market in items:
        if not isinstance(market, SyntheticMarket):
            raise TypeError(f"markets: expected SyntheticMarket values, found {type(market).__name__}")
        own = timeframe_minutes(market.timeframe)
        candles = []
        for timeframe in timeframes:
            if timeframe_minutes(timeframe) % own:
                raise ValueError(
                    f"timeframes: {timeframe} cannot be built from {market.symbol}'s "
                    f"{market.timeframe} candles; pass timeframes that are multiples of it"
                )
            stacked = market.ohlcv()
            candles.append(stacked if timeframe == market.timeframe else resample_ohlcv(stacked, timeframe))
        label = source if source is not None else f"synthetic:seed={market.seed}"
        batches.append((label, pl.concat(candles, how="vertical"), market.funding))
    results = []
    for label, candles, funding in batches:
        results.append(store.write("ohlcv", candles, source=label))
        results.append(store.write("funding", funding, source=label))
    return results
