"""Borrowing positions for ``margincall lending``: read from a file or drawn with a seed.

File schema (Parquet ``.parquet`` or CSV ``.csv``, one row per position; extra columns are
ignored):

=========================  =======  ===========================================================
column                     type     meaning
=========================  =======  ===========================================================
``protocol``               str      ``aave_v3``, ``compound_v3`` or ``maker`` (:data:`PROTOCOLS`)
``asset``                  str      collateral asset, the base of a ``--symbol`` (``ETH``)
``collateral``             float    collateral, whole tokens, >= 0
``debt``                   float    debt owed at the window's start, base currency (USD/DAI), >= 0
``liquidation_threshold``  float    Aave LT (0.825); Comet liquidateCF (0.9); Maker ``1 / mat``; in (0, 1]
``liquidation_bonus``      float    Aave bonus multiplier (1.05); Comet ``2 - liquidationFactor``
                                    (LF 0.95 -> 1.05); Maker ``chop`` (1.13); >= 1
``position_id``            str/int  optional; the row number when absent. Aave rows sharing an
                                    id are *one* position with several collaterals and debts
``debt_asset``             str      optional, default ``USDC``: the asset the debt is owed in
                                    (:data:`STABLE_ASSETS` at price 1, else a ``--symbol`` base;
                                    ``debt`` is then its value at the window's start)
=========================  =======  ===========================================================

Multi-asset positions (Aave v3 only): the rows of one ``position_id`` each add their
``collateral`` of ``asset`` and their ``debt`` in ``debt_asset``; the health factor is taken over
all of them and the liquidator picks the pair (:mod:`backtest.lending.multi`). The liquidation
threshold and bonus are the reserve's: one value per collateral asset across the positions.

Generated populations (:func:`generate_population`, documented distributions): collateral
value log-normal (median ``median_value`` base currency, log-sd ``value_sigma``), starting
health factor uniform in ``health_factor_range`` (Maker: collateralization ratio ``/ mat``),
``debt = value * LT / HF``; the same seed gives the same rows.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from backtest.errors import did_you_mean
from backtest.lending.checks import positive
from backtest.lending.errors import LendingParameterError

__all__ = ["ASSET_DEFAULTS", "COLUMNS", "PROTOCOLS", "PROTOCOL_DEFAULTS", "STABLE_ASSETS",
           "generate_multi_population", "generate_population", "multi_asset_rows",
           "read_population", "validate_population"]

#: Protocols the simulation runs: Aave v3 through :mod:`backtest.lending.simulation`, Compound
#: v3 through :mod:`backtest.lending.comet_simulation`, Maker through the auctions of
#: :mod:`backtest.lending.auctions`.
PROTOCOLS = ("aave_v3", "compound_v3", "maker")
#: Required columns and their kind.
COLUMNS = {"protocol": "text", "asset": "text", "collateral": "number", "debt": "number",
           "liquidation_threshold": "number", "liquidation_bonus": "number"}
#: Default (liquidation_threshold, liquidation_bonus) per protocol: Aave v3 WETH (LT 82.5 %,
#: bonus 5 %), Comet WETH collateral (liquidateCF 90 %, liquidationFactor 95 % -> 1.05; an
#: assumption of the order of cUSDCv3's, not read from chain), Maker ETH-A 2020 (mat 150 %,
#: chop 13 %).
PROTOCOL_DEFAULTS = {"aave_v3": (0.825, 1.05), "compound_v3": (0.90, 1.05),
                     "maker": (1 / 1.5, 1.13)}

#: Debt assets valued at 1 base unit (no price path needed).
STABLE_ASSETS = ("USD", "USDC", "USDT", "DAI")
#: Aave v3 Ethereum reserve (liquidation threshold, bonus) per collateral asset of generated
#: multi-asset positions: WETH 82.5 %/5 %, WBTC 78 %/5 % (the values margin_rules.md §8
#: quotes for the Ethereum market); other assets take the aave_v3 default.
ASSET_DEFAULTS = {"ETH": (0.825, 1.05), "BTC": (0.78, 1.05)}


def _protocol(name: str, subject: str) -> str:
    if name not in PROTOCOLS:
        raise LendingParameterError(
            f"{subject}: expected a protocol among {', '.join(PROTOCOLS)}, found {name!r}"
            f"{did_you_mean(str(name), PROTOCOLS)}; fix the name")
    return name


def validate_population(frame: pl.DataFrame, *, subject: str = "positions") -> pl.DataFrame:
    """Check a population against the schema; return it with ``position_id`` (str) and float
    columns, in the schema's order.

    Raises
    ------
    LendingParameterError
        Naming the column, the first offending row, what was expected and the fix.
    """
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise LendingParameterError(
            f"{subject}: expected the columns {', '.join(COLUMNS)}, found "
            f"{', '.join(frame.columns) or 'none'} (missing {', '.join(missing)}); see the schema "
            "in docs/lending.md")
    out = {}
    for name, kind in COLUMNS.items():
        column = frame[name]
        if kind == "number":
            if not column.dtype.is_numeric():
                raise LendingParameterError(
                    f"{subject}: column {name!r} must hold numbers, found type {column.dtype}; "
                    "write plain numbers (no units or thousands separators)")
            values = column.cast(pl.Float64).to_numpy()
            bad = ~np.isfinite(values) | (values < 0)
            if name == "liquidation_threshold":
                bad |= (values <= 0) | (values > 1)
            if name == "liquidation_bonus":
                bad |= values < 1
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                expected = {"liquidation_threshold": "a fraction in (0, 1] (82.5 % -> 0.825)",
                            "liquidation_bonus": "a multiplier >= 1 (5 % -> 1.05)"}.get(
                                name, "a finite number >= 0")
                raise LendingParameterError(
                    f"{subject}: column {name!r} row {row}: expected {expected}, found "
                    f"{values[row]!r}; fix the row ({int(bad.sum())} row(s) affected)")
            out[name] = values
        else:
            if column.null_count():
                row = int(np.flatnonzero(column.is_null().to_numpy())[0])
                raise LendingParameterError(f"{subject}: column {name!r} row {row} is empty; "
                                            "every position needs a protocol and an asset")
            out[name] = column.cast(pl.Utf8)
    for name in out["protocol"].unique().to_list():
        _protocol(name, f"{subject}: column 'protocol'")
    ids = (frame["position_id"].cast(pl.Utf8) if "position_id" in frame.columns
           else pl.Series([str(i) for i in range(frame.height)]))
    debt_asset = (frame["debt_asset"].cast(pl.Utf8).fill_null("USDC")
                  if "debt_asset" in frame.columns else pl.Series(["USDC"] * frame.height))
    result = pl.DataFrame({"position_id": ids, **out, "debt_asset": debt_asset})
    multi = multi_asset_rows(result)
    wrong = result.filter(multi & (pl.col("protocol") != "aave_v3"))
    if wrong.height:
        raise LendingParameterError(
            f"{subject}: position {wrong['position_id'][0]!r} ({wrong['protocol'][0]}) has several "
            "rows or a non-stable debt_asset; expected that only for aave_v3 positions; give "
            "each Compound/Maker row its own position_id and a stable debt")
    return result


def multi_asset_rows(frame: pl.DataFrame) -> pl.Series:
    """Rows of multi-asset positions: a ``position_id`` on several rows, or a debt owed in an
    asset outside :data:`STABLE_ASSETS`."""
    return frame.select(
        (pl.col("position_id").count().over("position_id") > 1)
        | ~pl.col("debt_asset").is_in(STABLE_ASSETS)).to_series()


def read_population(path: str | Path) -> pl.DataFrame:
    """Read and validate a population file (``.parquet`` or ``.csv``)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise LendingParameterError(
            f"positions file {path}: expected a .parquet or .csv file, found {suffix or 'no'} "
            "extension; convert it or rename it")
    if not path.is_file():
        raise LendingParameterError(f"positions file {path}: expected an existing file, found "
                                    "nothing there; check the path")
    try:
        frame = pl.read_parquet(path) if suffix == ".parquet" else pl.read_csv(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise LendingParameterError(
            f"positions file {path}: expected a readable {suffix[1:]} table, found an unreadable "
            f"file ({str(exc).splitlines()[0]}); re-export it") from None
    return validate_population(frame, subject=f"positions file {path}")


def generate_population(n: int, *, seed: int, protocol: str, asset: str, price: float,
                        median_value: float = 20_000.0, value_sigma: float = 1.5,
                        health_factor_range: tuple[float, float] = (1.05, 2.5),
                        liquidation_threshold: float | None = None,
                        liquidation_bonus: float | None = None) -> pl.DataFrame:
    """``n`` positions drawn from the documented distributions (module docstring) at
    ``price`` (base currency per collateral token); LT and bonus default per protocol
    (:data:`PROTOCOL_DEFAULTS`)."""
    from backtest.lending.simulation import generate_positions

    _protocol(protocol, "generate_population")
    lt_default, bonus_default = PROTOCOL_DEFAULTS[protocol]
    lt = lt_default if liquidation_threshold is None else liquidation_threshold
    bonus = bonus_default if liquidation_bonus is None else liquidation_bonus
    book = generate_positions(n, seed=seed, price=positive("price", price),
                              liquidation_threshold=lt, liquidation_bonus=bonus,
                              median_collateral_value=median_value, value_sigma=value_sigma,
                              health_factor_range=health_factor_range)
    return validate_population(pl.DataFrame({
        "position_id": [f"{protocol}-{asset}-{i}" for i in range(n)],
        "protocol": [protocol] * n, "asset": [asset] * n, "collateral": book.collateral,
        "debt": book.debt, "liquidation_threshold": book.liquidation_threshold,
        "liquidation_bonus": book.liquidation_bonus}))


def generate_multi_population(n: int, *, seed: int, prices: dict[str, float],
                              debt_assets: tuple[str, ...] = ("USDC", "USDT"),
                              median_value: float = 20_000.0, value_sigma: float = 1.5,
                              health_factor_range: tuple[float, float] = (1.05, 2.5),
                              concentration: float = 1.0) -> pl.DataFrame:
    """``n`` Aave v3 positions each holding every asset of ``prices`` (base currency per token
    at the start) as collateral and owing every one of ``debt_assets``: total collateral value
    log-normal (median ``median_value``, log-sd ``value_sigma``), split across the collaterals
    and across the debts by Dirichlet(``concentration``) weights; the starting health factor
    (over all of them) uniform in ``health_factor_range``; LT and bonus per asset from
    :data:`ASSET_DEFAULTS`. Long format: ``max(K, M)`` rows per position (row ``r`` holds the
    ``r``-th collateral and the ``r``-th debt, zero where one list is shorter). Seeded."""
    low, high = health_factor_range
    if n < 0 or not prices or not debt_assets or not 0 < low <= high:
        raise LendingParameterError(
            f"generate_multi_population: expected n >= 0, at least one collateral price and one "
            f"debt asset, 0 < low <= high health factors; found n={n}, prices={prices}, "
            f"debt_assets={debt_assets}, range={health_factor_range}")
    assets = list(prices)
    rng = np.random.default_rng(seed)
    value = positive("median_value", median_value) * np.exp(value_sigma * rng.standard_normal(n))
    coll_w = rng.dirichlet(np.full(len(assets), positive("concentration", concentration)), n)
    debt_w = rng.dirichlet(np.full(len(debt_assets), concentration), n)
    hf = rng.uniform(low, high, n)
    params = np.array([ASSET_DEFAULTS.get(a, PROTOCOL_DEFAULTS["aave_v3"]) for a in assets])
    coll_value = value[:, None] * coll_w
    debt_total = coll_value @ params[:, 0] / hf
    width = max(len(assets), len(debt_assets))
    rows: dict[str, list[Any]] = {k: [] for k in ("position_id", "protocol", "asset", "collateral",
                                                   "debt", "liquidation_threshold",
                                                   "liquidation_bonus", "debt_asset")}
    for r in range(width):
        k, m = r % len(assets), r % len(debt_assets)
        rows["position_id"] += [f"aave_v3-multi-{i}" for i in range(n)]
        rows["protocol"] += ["aave_v3"] * n
        rows["asset"] += [assets[k]] * n
        rows["collateral"] += list(coll_value[:, k] / positive(f"price of {assets[k]}",
                                                               prices[assets[k]])
                                   if r < len(assets) else np.zeros(n))
        rows["debt"] += list(debt_total * debt_w[:, m] if r < len(debt_assets) else np.zeros(n))
        rows["liquidation_threshold"] += [params[k, 0]] * n
        rows["liquidation_bonus"] += [params[k, 1]] * n
        rows["debt_asset"] += [debt_assets[m]] * n
    frame = pl.DataFrame(rows).sort("position_id", maintain_order=True)
    return validate_population(frame, subject="generate_multi_population")
