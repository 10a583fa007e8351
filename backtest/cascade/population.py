"""A population of isolated positions as arrays, from a file or generated with a seed.

One row per position: ``symbol`` (ccxt unified), ``side`` (``long``/``short`` or +1/-1),
``qty`` (base units), ``entry_price`` (quote per base) and ``margin`` (isolated margin, quote)
or ``leverage`` (margin = qty x entry / leverage); optional ``margin_mode`` (``isolated`` or
``cross``) and ``account``. Cross rows share their account's wallet: the wallet is the sum of
the account's rows' ``margin`` (each row's share of it), and the account is liquidated as a
whole when its equity falls to its summed maintenance (:mod:`backtest.cascade.cross`). Never
one Python object per position.

Synthetic populations draw leverage from a documented prior (:data:`LEVERAGE_PRIORS`), sizes
from a log-normal, entries around the start price, and drop positions that would already be
below maintenance at the start (they would not be open).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from backtest.cascade.errors import PopulationError

__all__ = ["LEVERAGE_PRIORS", "Population", "population_from_open_interest", "read_population",
           "synthetic_population", "with_cross_accounts"]

#: Leverage priors: ``{leverage: share of open interest}``.
#: ``hyperliquid_2025_12`` — cascades.md §5 (E): on 2025-12-15 Hyperliquid OI $7.63B: $2.77B at
#: 0-3x (36 %), $3.7B at 3-7x (49 %), $1.16B above 7x (15 %), spread over the listed steps.
#: ``binance_2019`` — cascades.md §5: Binance (2019) 60 % of futures trades opened at >= 20x,
#: 21 % at the 125x maximum; the split below 20x is our assumption.
LEVERAGE_PRIORS: dict[str, dict[float, float]] = {
    "hyperliquid_2025_12": {2.0: 0.18, 3.0: 0.18, 5.0: 0.49, 10.0: 0.08, 20.0: 0.04, 25.0: 0.02,
                            40.0: 0.01},
    "binance_2019": {2.0: 0.05, 3.0: 0.05, 5.0: 0.10, 10.0: 0.20, 20.0: 0.15, 25.0: 0.10,
                     50.0: 0.08, 75.0: 0.03, 100.0: 0.03, 125.0: 0.21},
}

_SIDES = {"long": 1, "short": -1, "buy": 1, "sell": -1, "1": 1, "-1": -1}


@dataclass(frozen=True)
class Population:
    """Positions as parallel arrays (one element per position).

    Attributes
    ----------
    symbol : ndarray of str
    side : ndarray of int8
        +1 long, -1 short.
    qty, entry, margin : ndarray of float64
        Base units; quote per base; isolated margin (a cross row: its share of the account's
        wallet) in quote currency.
    account : ndarray of int64, optional
        Cross account of each row, ``-1`` for an isolated position (None: all isolated).
    """

    symbol: NDArray[np.str_]
    side: NDArray[np.int8]
    qty: NDArray[np.float64]
    entry: NDArray[np.float64]
    margin: NDArray[np.float64]
    account: NDArray[np.int64] | None = None

    def __post_init__(self) -> None:
        n = len(self.qty)
        if self.account is not None and len(self.account) != n:
            raise PopulationError("population: the account column must have one value per position")
        if not all(len(a) == n for a in (self.symbol, self.side, self.entry, self.margin)):
            raise PopulationError("population: every column must have one value per position; "
                                  "found columns of different lengths")
        problems = [(name, int(np.argmax(~ok))) for name, ok in (
            ("qty", np.isfinite(self.qty) & (self.qty > 0)),
            ("entry_price", np.isfinite(self.entry) & (self.entry > 0)),
            ("margin", np.isfinite(self.margin) & (self.margin > 0)),
            ("side", np.isin(self.side, (-1, 1)))) if not ok.all()]
        if problems:
            name, row = problems[0]
            value = {"qty": self.qty, "entry_price": self.entry, "margin": self.margin,
                     "side": self.side}[name][row].item()
            raise PopulationError(f"population row {row}: {name} must be "
                                  f"{'+1/-1 (long/short)' if name == 'side' else 'a finite number > 0'}, "
                                  f"found {value!r}; fix the file or drop the row")

    def __len__(self) -> int:
        return len(self.qty)

    @classmethod
    def concat(cls, parts: list[Population]) -> Population:
        """The positions of ``parts`` one after the other (row order kept; account ids kept apart)."""
        columns = [np.concatenate([getattr(p, name) for p in parts])
                   for name in ("symbol", "side", "qty", "entry", "margin")]
        if all(p.account is None for p in parts):
            return cls(*columns)
        accounts, offset = [], 0
        for p in parts:
            a = np.full(len(p), -1, dtype=np.int64) if p.account is None else p.account.copy()
            a[a >= 0] += offset
            offset = max(offset, int(a.max()) + 1 if len(a) else offset)
            accounts.append(a)
        return cls(*columns, account=np.concatenate(accounts))

    @property
    def leverage(self) -> NDArray[np.float64]:
        """Entry notional / margin."""
        return self.qty * self.entry / self.margin

    @property
    def cross(self) -> NDArray[np.bool_]:
        """True for rows of a cross account."""
        if self.account is None:
            return np.zeros(len(self.qty), dtype=bool)
        return self.account >= 0

    def symbols(self) -> list[str]:
        """Distinct symbols, sorted."""
        return sorted(set(np.unique(self.symbol).tolist()))

    def select(self, symbol: str, *, isolated: bool = False) -> NDArray[np.intp]:
        """Row indices of ``symbol`` (only its isolated positions with ``isolated``)."""
        if isolated and self.account is not None:
            return np.flatnonzero((self.symbol == symbol) & (self.account < 0))
        return np.flatnonzero(self.symbol == symbol)


def read_population(path: str | Path) -> Population:
    """Read a population from Parquet or CSV (columns in the module docstring).

    Raises
    ------
    PopulationError
        Missing file or columns, a cross-margin row, a bad value (the message names the row).
    """
    import polars as pl

    path = Path(path)
    if not path.is_file():
        raise PopulationError(f"population file {path}: expected a Parquet or CSV file, found nothing "
                              "there; pass --population FILE or --synthetic N")
    try:
        frame = pl.read_parquet(path) if path.suffix.lower() in (".parquet", ".pq") else pl.read_csv(path)
    except Exception as exc:  # noqa: BLE001 - any reader error becomes one clear message
        raise PopulationError(f"population file {path}: expected Parquet or CSV, could not read it "
                              f"({type(exc).__name__}: {exc})") from None
    required = {"symbol", "side", "qty", "entry_price"}
    missing = sorted(required - set(frame.columns))
    if missing or not ({"margin", "leverage"} & set(frame.columns)):
        need = missing + ([] if {"margin", "leverage"} & set(frame.columns) else ["margin or leverage"])
        raise PopulationError(f"population file {path}: missing column(s) {', '.join(need)}; expected "
                              "symbol, side, qty, entry_price and margin (or leverage); found "
                              f"{', '.join(frame.columns)}")
    account = None
    if "margin_mode" in frame.columns:
        modes = frame["margin_mode"].cast(pl.Utf8).str.to_lowercase()
        unknown = sorted(set(modes.unique().to_list()) - {"isolated", "cross"})
        if unknown:
            raise PopulationError(f"population file {path}: margin_mode {unknown}: expected 'isolated' or 'cross'")
        cross = (modes == "cross").to_numpy()
        if cross.any():
            if "account" not in frame.columns or frame["account"].filter(pl.Series(cross)).null_count():
                raise PopulationError(f"population file {path}: margin_mode 'cross' rows need an account column "
                                      "(the account whose wallet they share), found none; add it or mark the rows "
                                      "'isolated'")
            ids = frame["account"].cast(pl.Utf8).to_numpy().astype(str)
            _, inverse = np.unique(ids[cross], return_inverse=True)
            account = np.full(frame.height, -1, dtype=np.int64)
            account[cross] = inverse
    sides_text = frame["side"].cast(pl.Utf8).str.to_lowercase().to_list()
    bad = [s for s in sides_text if s not in _SIDES]
    if bad:
        raise PopulationError(f"population file {path}: side {bad[0]!r}: expected long/short (or +1/-1)")
    side = np.array([_SIDES[s] for s in sides_text], dtype=np.int8)
    qty = frame["qty"].cast(pl.Float64).to_numpy()
    entry = frame["entry_price"].cast(pl.Float64).to_numpy()
    if "margin" in frame.columns:
        margin = frame["margin"].cast(pl.Float64).to_numpy()
    else:
        leverage = frame["leverage"].cast(pl.Float64).to_numpy()
        margin = qty * entry / np.where(leverage > 0, leverage, np.nan)
    return Population(frame["symbol"].cast(pl.Utf8).to_numpy().astype(str), side, qty, entry, margin, account)


def synthetic_population(n: int, *, seed: int, prices: dict[str, float], prior: str = "hyperliquid_2025_12",
                         long_share: float = 0.5, mean_notional: float = 20_000.0,
                         notional_sigma: float = 1.5, entry_sigma: float = 0.03,
                         maintenance_rate: float = 0.005) -> Population:
    """``n`` isolated positions spread evenly over ``prices``' symbols, deterministic in ``seed``.

    Draws are repeated until ``n`` positions pass the screening (those already below
    maintenance at the start price are not open positions), so exactly ``n`` are returned.

    Parameters
    ----------
    n : int
        Positions drawn (before dropping those already below maintenance at the start).
    seed : int
        Random seed.
    prices : dict
        Start price per symbol (quote per base); entries are drawn around it.
    prior : str
        Key of :data:`LEVERAGE_PRIORS`.
    long_share : float
        Probability that a position is long.
    mean_notional : float
        Mean entry notional, quote currency (log-normal with ``notional_sigma``).
    entry_sigma : float
        Log-sd of entry price around the start price (positions opened over recent days).
    maintenance_rate : float
        Screening rate: positions whose equity at the start price is below this share of
        their notional are dropped (they would already have been liquidated).
    """
    if n < 1:
        raise PopulationError(f"synthetic population: N must be >= 1, found {n}")
    if prior not in LEVERAGE_PRIORS:
        from backtest.errors import did_you_mean

        raise PopulationError(f"leverage prior {prior!r}: expected one of {', '.join(LEVERAGE_PRIORS)}"
                              f"{did_you_mean(prior, LEVERAGE_PRIORS)}")
    if not 0.0 <= long_share <= 1.0:
        raise PopulationError(f"synthetic population: long_share must be in [0, 1], found {long_share}")
    if not prices:
        raise PopulationError("synthetic population: expected at least one symbol with a start price")
    rng = np.random.default_rng(seed)
    names = sorted(prices)
    parts: list[tuple[np.ndarray, ...]] = []
    kept = 0
    while kept < n:  # draw until n positions survive the screening (deterministic in seed)
        part = _draw(rng, n, names, prices, prior, long_share, mean_notional, notional_sigma, entry_sigma,
                     maintenance_rate)
        parts.append(part)
        kept += len(part[0])
    symbol, side, qty, entry, margin = (np.concatenate(column)[:n] for column in zip(*parts))
    return Population(symbol, side, qty, entry, margin)


def _draw(rng: np.random.Generator, n: int, names: list[str], prices: dict[str, float], prior: str,
          long_share: float, mean_notional: float, notional_sigma: float, entry_sigma: float,
          maintenance_rate: float) -> tuple[np.ndarray, ...]:
    symbol_index = rng.integers(0, len(names), n)
    start = np.array([prices[s] for s in names])[symbol_index]
    levels = np.array(list(LEVERAGE_PRIORS[prior]), dtype=np.float64)
    weights = np.array(list(LEVERAGE_PRIORS[prior].values()), dtype=np.float64)
    leverage = rng.choice(levels, size=n, p=weights / weights.sum())
    side = np.where(rng.random(n) < long_share, 1, -1).astype(np.int8)
    # log-normal with the requested mean: mu = ln(mean) - sigma^2 / 2
    notional = rng.lognormal(np.log(mean_notional) - notional_sigma ** 2 / 2, notional_sigma, n)
    entry = start * np.exp(rng.normal(0.0, entry_sigma, n))
    qty = notional / entry
    margin = notional / leverage
    equity = margin + side * qty * (start - entry)
    alive = equity > maintenance_rate * qty * start
    return (np.array(names)[symbol_index][alive], side[alive], qty[alive], entry[alive], margin[alive])


def population_from_open_interest(open_interest: dict[str, float], *, seed: int, prices: dict[str, float],
                                  prior: str = "hyperliquid_2025_12", long_share: float = 0.5,
                                  mean_notional: float = 20_000.0, notional_sigma: float = 1.5,
                                  entry_sigma: float = 0.03, max_positions: int = 2_000_000) -> Population:
    """Positions estimated from each symbol's open interest and a leverage prior.

    The estimator of cascades.md §5/§7.1 without the OI-flow entry history (the store holds no
    open-interest series): per symbol, ``OI / mean_notional`` positions (at least 1) are drawn
    as :func:`synthetic_population` draws them — leverage from the prior
    (:data:`LEVERAGE_PRIORS`; ``hyperliquid_2025_12`` is Hyperliquid's 2025-12-15 split of
    open interest, 36 % at <= 3x, 49 % at 3-7x, 15 % above 7x), log-normal sizes, entries around
    the price — and their quantities (and margins) are scaled so the notional at the current
    price sums to the given OI exactly. Since sizes and leverage are drawn independently, each
    leverage level's expected share of OI is its prior weight.

    Parameters
    ----------
    open_interest : dict
        ``{symbol: open interest}``, quote currency at ``prices``.
    seed : int
        Random seed (symbol ``i`` in sorted order draws with ``seed + i``).
    prices : dict
        Current price per symbol.
    prior, long_share, mean_notional, notional_sigma, entry_sigma
        As in :func:`synthetic_population`.
    max_positions : int
        Refuse estimates above this many positions (raise ``mean_notional`` instead).
    """
    if not open_interest:
        raise PopulationError("open-interest population: expected at least one SYMBOL=OI")
    parts = []
    for i, symbol in enumerate(sorted(open_interest)):
        oi = open_interest[symbol]
        if not (np.isfinite(oi) and oi > 0):
            raise PopulationError(f"open interest of {symbol}: expected a finite amount > 0 (quote), found {oi!r}")
        if symbol not in prices:
            raise PopulationError(f"open-interest population: no price for {symbol}; give one per symbol")
        n = max(1, int(round(oi / mean_notional)))
        if n > max_positions:
            raise PopulationError(f"open interest of {symbol}: {oi:,.0f} / mean notional {mean_notional:,.0f} gives "
                                  f"{n:,} positions, above {max_positions:,}; raise --mean-notional")
        part = synthetic_population(n, seed=seed + i, prices={symbol: prices[symbol]}, prior=prior,
                                    long_share=long_share, mean_notional=mean_notional,
                                    notional_sigma=notional_sigma, entry_sigma=entry_sigma)
        scale = oi / float((part.qty * prices[symbol]).sum())
        parts.append(Population(part.symbol, part.side, part.qty * scale, part.entry, part.margin * scale))
    return Population.concat(parts)


def with_cross_accounts(population: Population, *, share: float, legs: int = 2, seed: int = 0) -> Population:
    """``population`` with a ``share`` of its positions grouped into cross accounts of ``legs`` rows.

    Rows are picked with ``numpy.random.default_rng(seed)`` and grouped in the drawn order, so
    an account may hold several symbols and both sides; each row's margin becomes its share of
    the account's wallet (the wallet is their sum). Deterministic in ``seed``.
    """
    if not 0 <= share <= 1 or legs < 1:
        raise PopulationError(f"cross accounts: expected 0 <= share <= 1 and legs >= 1, found {share}, {legs}")
    rng = np.random.default_rng(seed)
    n = int(round(share * len(population)))
    n -= n % legs
    picked = rng.permutation(len(population))[:n]
    account = np.full(len(population), -1, dtype=np.int64)
    account[picked] = np.arange(n) // legs
    return Population(population.symbol, population.side, population.qty, population.entry, population.margin,
                      account)
