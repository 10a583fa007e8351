"""The aggregate case of 2025-10-10: a documented market-wide population on the stored window.

Validation case (cascades.md §8, "Aggregate sanity check"): perp open interest across major
venues fell from $217B to $123B (-$94B, CoinDesk Data) while reported liquidations were at
least $19.13B (Coinglass, a throttled lower bound, §B.8). A cascade on an estimated population
must land liquidations between the two.

Population (documented assumptions, not data):

* total open interest ``OI_BEFORE`` = $217B at the window start, split ``BTC_SHARE`` = 40 % on
  the BTCUSDT path and 60 % on the ETHUSDT path, which stands in for ETH and every alt (alts
  fell more than ETH, so this understates their moves);
* leverage: ``HYPERLIQUID_SHARE`` = 6.5 % of OI (Hyperliquid's $14B of $217B, CoinDesk) with the
  Hyperliquid 2025-12 prior, the rest with the Binance 2019 prior (the CEX mix is far more
  levered than Hyperliquid's, cascades.md §5);
* 50 % long by count, entries log-normal with a 3 % spread around the window's first price,
  positions already below maintenance at the start dropped.

The stored candles already hold the real cascade's impact, so the run passes the path through
(``pass_through_liquidity``: depth so deep the forced orders do not move it again); with the
default single-venue depth the same population runs away (docs/cascade.md reports both).
"""
from __future__ import annotations

from dataclasses import replace

from backtest.cascade.liquidity import LiquidityModel, default_liquidity
from backtest.cascade.population import Population, synthetic_population

__all__ = ["BTC_SHARE", "HYPERLIQUID_SHARE", "LIQUIDATIONS_REPORTED", "OI_BEFORE", "OI_DECLINE",
           "aggregate_population", "pass_through_liquidity"]

#: Perp OI across major venues before the crash, USD (CoinDesk Data, cascades.md §B.1).
OI_BEFORE = 217e9
#: OI decline Oct 10 -> Oct 11, USD (217B -> 123B).
OI_DECLINE = 94e9
#: Coinglass 24 h liquidations, USD: a lower bound (cascades.md §B.8).
LIQUIDATIONS_REPORTED = 19.13e9
#: Share of OI on the BTC path (assumption).
BTC_SHARE = 0.4
#: Hyperliquid's share of OI ($14B of $217B, CoinDesk).
HYPERLIQUID_SHARE = 14e9 / 217e9


def aggregate_population(n: int, *, seed: int, prices: dict[str, float], btc: str = "BTC/USDT:USDT",
                         other: str = "ETH/USDT:USDT", hyperliquid_share: float = HYPERLIQUID_SHARE) -> Population:
    """``n`` positions carrying ``OI_BEFORE`` of notional (see the module docstring).

    ``hyperliquid_share = 1`` gives the Hyperliquid prior alone, ``0`` the Binance prior alone.
    """
    mean = OI_BEFORE / n
    parts = []
    for k, (symbol, share) in enumerate(((btc, BTC_SHARE), (other, 1 - BTC_SHARE))):
        for j, (prior, weight) in enumerate((("hyperliquid_2025_12", hyperliquid_share),
                                             ("binance_2019", 1 - hyperliquid_share))):
            count = int(round(n * share * weight))
            if count:
                parts.append(synthetic_population(count, seed=seed * 4 + 2 * k + j, prices={symbol: prices[symbol]},
                                                  prior=prior, mean_notional=mean))
    return Population.concat(parts)


def pass_through_liquidity(symbol: str) -> LiquidityModel:
    """A book so deep (x1e6) and with no permanent impact that the stored path is not moved again."""
    model = default_liquidity(symbol)
    return replace(model, depth_at_ref=model.depth_at_ref * 1e6, permanent_fraction=0.0)
