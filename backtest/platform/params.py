"""A venue's parameters for the platform view: the venue's defaults with TOML overrides.

What a platform run varies (cascades.md §7.2): the bracket table of each symbol, the largest
leverage a position may hold, the liquidation (clearance) fee, the insurance-fund size, the
ADL rule and the disposal policy. Defaults come from the cascade rule set and the built-in
venue data at the scenario time (``at_ms``); a TOML file overrides any of them::

    venue = "binance_usdm"          # cascade rule set (backtest.cascade.venue.VENUES)
    adl_rule = "queue"              # queue | pro_rata | leverage_levelling
    insurance_fund = 50e6           # USDT
    liquidation_fee = 0.0125        # fraction of the liquidated notional
    max_leverage = 50               # positions above are capped: margin = notional / 50
    disposal_cap = 5e6              # USDT per book side per step (absent: all at once)

    [tiers."BTC/USDT:USDT"]         # floors (USDT) and maintenance rates; cum follows
    floors = [0, 50_000, 250_000]   # Binance's continuity recursion
    mmr = [0.004, 0.005, 0.01]
    max_leverage = [125, 100, 50]   # optional

Unknown keys get a did-you-mean error; a bad value names the key, the expectation and the file.
"""
from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from backtest.cascade.errors import CascadeError

__all__ = ["PlatformError", "PlatformVenue", "default_venue", "load_venue"]

_KEYS = ("venue", "adl_rule", "insurance_fund", "liquidation_fee", "max_leverage", "disposal_cap", "tiers")


class PlatformError(CascadeError):
    """A platform input (venue parameters, scenario set, recommendation target) is invalid."""


@dataclass(frozen=True)
class PlatformVenue:
    """The venue parameters a platform run applies to every scenario.

    Attributes
    ----------
    venue : str
        Cascade rule set (``binance_usdm``, ``bybit``, ``bitmex``, ``hyperliquid``).
    adl_rule : str
        ``queue``, ``pro_rata`` or ``leverage_levelling``.
    insurance_fund : float
        Starting fund, quote currency.
    liquidation_fee : float
        Liquidation (clearance) fee, fraction of the liquidated notional; enters the bracket
        recommendation (the fee the bracket must cover besides slippage and drift).
    max_leverage : float
        Positions above it are capped (margin raised to notional / max_leverage), as a venue
        that refuses higher leverage would have them.
    disposal_cap : float
        Largest notional sent to one book side per step, quote currency (``inf``: all at once).
    tiers : dict
        ``{symbol: TierTable}``; a symbol absent here uses the rule set's table at the time.
    """

    venue: str = "binance_usdm"
    adl_rule: str = "queue"
    insurance_fund: float = 50e6
    liquidation_fee: float = 0.0125
    max_leverage: float = 125.0
    disposal_cap: float = math.inf
    tiers: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from backtest.cascade.engine import CascadeConfig

        CascadeConfig(venue=self.venue, adl_rule=self.adl_rule, insurance_fund=self.insurance_fund,
                      disposal_cap=self.disposal_cap)  # one home for those checks
        if not 0 <= self.liquidation_fee < 0.5:
            raise PlatformError(f"liquidation_fee: expected a fraction of notional in [0, 0.5), found "
                                f"{self.liquidation_fee!r} (e.g. 0.0125 for 1.25 %)")
        if not (self.max_leverage >= 1 and math.isfinite(self.max_leverage)):
            raise PlatformError(f"max_leverage: expected a finite number >= 1, found {self.max_leverage!r}")

    def tier_table(self, symbol: str, at_ms: int):  # noqa: ANN201 - backtest.venues.tiers.TierTable
        """The bracket table of ``symbol``: the override, else the rule set's table at ``at_ms``."""
        if symbol in self.tiers:
            return self.tiers[symbol]
        from backtest.cascade.venue import venue_rules
        from backtest.venues.base import RULEBOOKS, get_rulebook
        from backtest.venues.defaults import default_tier_schedule

        rules = venue_rules(self.venue)
        if rules.tier_exchange in RULEBOOKS:
            return get_rulebook(rules.tier_exchange).margin_table(symbol, at_ms)
        return default_tier_schedule(rules.tier_exchange, symbol).at(at_ms)

    def cap_leverage(self, population):  # noqa: ANN001, ANN201 - Population -> Population
        """``population`` with every margin raised to at least notional / ``max_leverage``."""
        floor = population.qty * population.entry / self.max_leverage
        if not (population.margin < floor).any():
            return population
        return replace(population, margin=np.maximum(population.margin, floor))

    def describe(self) -> dict[str, Any]:
        """JSON-ready parameters (tier overrides as rows)."""
        out = asdict(self) | {"tiers": {s: t.to_rows() for s, t in self.tiers.items()}}
        out["disposal_cap"] = None if math.isinf(self.disposal_cap) else self.disposal_cap
        return out


def default_venue(venue: str = "binance_usdm", *, symbol: str = "BTC/USDT:USDT", at_ms: int | None = None,
                  **overrides: Any) -> PlatformVenue:
    """The rule set's defaults: its first bracket's max leverage and the venue's clearance fee.

    The liquidation fee is the built-in clearance rate of the rule set's tier exchange at
    ``at_ms`` (``backtest.venues.defaults.clearance_fee_rate``); 0 where the venue data has none (Hyperliquid
    charges no separate liquidation fee, cascades.md §C).
    """
    from backtest.cascade.venue import venue_rules
    from backtest.venues.defaults import clearance_fee_rate

    rules = venue_rules(venue)
    at = 1_760_130_000_000 if at_ms is None else at_ms  # 2025-10-10 21:00 UTC
    try:
        fee = clearance_fee_rate(rules.tier_exchange, symbol, at)
    except Exception:  # noqa: BLE001 - no built-in clearance fee for this venue/symbol
        fee = 0.0
    base = PlatformVenue(venue=venue, liquidation_fee=fee)
    table = base.tier_table(symbol, at)
    lev = float(table.tiers[0].max_leverage)
    base = replace(base, max_leverage=lev if math.isfinite(lev) else base.max_leverage)
    return replace(base, **overrides) if overrides else base


def load_venue(path: str | Path, *, at_ms: int | None = None, symbol: str = "BTC/USDT:USDT") -> PlatformVenue:
    """Read a TOML file of overrides (module docstring) on top of the rule set's defaults.

    Raises
    ------
    PlatformError
        Missing or unreadable file, unknown key, bad value (the message names the key).
    """
    from backtest.errors import did_you_mean
    from backtest.venues.tiers import TierTable

    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PlatformError(f"venue parameters {path}: no such file; pass a TOML file to --params or leave it out "
                            "to use the venue's defaults") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PlatformError(f"venue parameters {path}: expected TOML, could not parse it ({exc})") from None
    for key in raw:
        if key not in _KEYS:
            raise PlatformError(f"venue parameters {path}: unknown key {key!r}; expected one of "
                                f"{', '.join(_KEYS)}{did_you_mean(key, _KEYS)}")
    tiers: dict[str, Any] = {}
    for name, spec in (raw.pop("tiers", None) or {}).items():
        try:
            floors, mmr = [float(x) for x in spec["floors"]], [float(x) for x in spec["mmr"]]
            lev = spec.get("max_leverage")
            if len(floors) != len(mmr) or (lev is not None and len(lev) != len(floors)):
                raise ValueError("floors, mmr and max_leverage must have one value per bracket")
            tiers[name] = TierTable.from_rates(list(zip(floors, mmr)), label=f"{path} tiers {name}",
                                               max_leverage=None if lev is None else [float(x) for x in lev])
        except (KeyError, TypeError, ValueError) as exc:
            raise PlatformError(f"venue parameters {path}: [tiers.{name!r}] expected floors = [...] and mmr = [...] "
                                f"(one rate per floor, first floor 0, rates non-decreasing), found an unusable "
                                f"table ({type(exc).__name__}: {exc})") from None
    numbers = {}
    for key in ("insurance_fund", "liquidation_fee", "max_leverage", "disposal_cap"):
        if key in raw:
            value = raw[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise PlatformError(f"venue parameters {path}: {key} expected a number, found {value!r}")
            numbers[key] = float(value)
    text = {k: str(raw[k]) for k in ("adl_rule",) if k in raw}
    try:
        return default_venue(str(raw.get("venue", "binance_usdm")), symbol=symbol, at_ms=at_ms,
                             tiers=tiers, **numbers, **text)
    except CascadeError as exc:
        raise PlatformError(f"venue parameters {path}: {exc}") from None
