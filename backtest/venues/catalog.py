"""What each venue module covers: the data behind ``margincall venues``.

Every venue module (selectable through :data:`backtest.venues.base.VENUES`, or one of the
rule modules of :data:`RULES_ONLY` that the engine cannot select yet, docs/venues.md) defines
``VENUE_INFO``, a :class:`VenueInfo` naming the contract types and margin modes its formulas
cover and the dated rule versions it holds. The sources are read from where they already live:
the module docstring's ``Sources`` list and, for a selectable venue, its ``Venue.rule_versions``;
the dated tables of a selectable venue come from its data file (``backtest/venues/data``).
Nothing here restates a venue fact.
"""
from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import MappingProxyType, ModuleType
from typing import Any

__all__ = ["RULES_ONLY", "CatalogEntry", "RuleVersion", "VenueInfo", "day_ms", "docstring_sources",
           "venue_catalog"]

#: Venue rule modules not yet selectable with ``--venue`` (formulas only; docs/venues.md):
#: name -> module. A venue moves to :data:`backtest.venues.base.VENUES` once it implements the
#: venue protocol.
RULES_ONLY: MappingProxyType[str, str] = MappingProxyType({
})


def day_ms(day: str) -> int:
    """``YYYY-MM-DD`` (a UTC day) as epoch milliseconds."""
    return int(datetime.fromisoformat(day).replace(tzinfo=timezone.utc).timestamp() * 1000)


@dataclass(frozen=True)
class RuleVersion:
    """One dated rule table a venue holds (a tier table, a fee level, a parameter set).

    Attributes
    ----------
    what : str
        The table (``"tiers BTC/USDT:USDT"``, ``"fees maker/taker"``).
    effective_from : int or None
        UTC ms it takes effect; None when the source gives no date (e.g. genesis parameters).
    source : str
        Where the values come from (a citation tag of the module docstring, or the data file).
    date_known : bool
        False when ``effective_from`` is an assumption (the first evidence, not a change date).
    """

    what: str
    effective_from: int | None
    source: str
    date_known: bool = True


@dataclass(frozen=True)
class VenueInfo:
    """A venue module's coverage, defined in the module as ``VENUE_INFO``.

    Attributes
    ----------
    name : str
        Venue name (``"binance_usdm"``, ``"hyperliquid"``).
    title : str
        One line naming the venue and product.
    modes : tuple of (str, str)
        ``(contract_type, margin_mode)`` pairs the formulas cover: contract type ``linear`` or
        ``inverse``, margin mode ``isolated`` or ``cross``.
    rule_versions : tuple of RuleVersion
        Dated tables held in the module itself (a selectable venue's data-file tables are
        added by :func:`venue_catalog`).
    """

    name: str
    title: str
    modes: tuple[tuple[str, str], ...]
    rule_versions: tuple[RuleVersion, ...] = field(default=())

    @property
    def contract_types(self) -> tuple[str, ...]:
        """Contract types covered, in first-seen order."""
        return tuple(dict.fromkeys(kind for kind, _ in self.modes))

    @property
    def margin_modes(self) -> tuple[str, ...]:
        """Margin modes covered, in first-seen order."""
        return tuple(dict.fromkeys(mode for _, mode in self.modes))


@dataclass(frozen=True)
class CatalogEntry:
    """One venue as ``margincall venues`` lists it."""

    info: VenueInfo
    module: str
    selectable: bool
    rule_versions: tuple[RuleVersion, ...]
    sources: tuple[str, ...]
    engine_sources: MappingProxyType[str, str]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (times as ISO UTC text)."""
        from backtest.metrics import iso

        return {
            "name": self.info.name, "title": self.info.title, "module": self.module,
            "selectable": self.selectable,
            "status": "selectable with --venue" if self.selectable else "rules only, not yet selectable",
            "contract_types": list(self.info.contract_types),
            "margin_modes": list(self.info.margin_modes),
            "coverage": [f"{kind}/{mode}" for kind, mode in self.info.modes],
            "rule_versions": [{"what": v.what, "effective_from": iso(v.effective_from),
                               "date_known": v.date_known, "source": v.source}
                              for v in self.rule_versions],
            "sources": list(self.sources),
            "engine_rule_versions": dict(self.engine_sources),
        }


_HEADER = re.compile(r"^Sources\b(?:\s*\((?P<note>[^)]*)\))?\s*:?\s*(?P<rest>.*)$")


def docstring_sources(doc: str | None) -> tuple[str, ...]:
    """The citations of a module docstring's ``Sources`` list, one string per entry.

    The list is either ``* `` bullets after a ``Sources ...:`` line (continuation lines
    joined) or, without bullets, the ``Sources: ...`` paragraph itself. A qualifier in the
    header other than "cited per function" (e.g. a repository pin) is kept as the first entry.
    """
    lines = (doc or "").splitlines()
    for index, line in enumerate(lines):
        match = _HEADER.match(line.strip())
        if match:
            break
    else:
        return ()
    note = (match.group("note") or "").strip()
    entries = [note] if note and note != "cited per function" else []
    rest = match.group("rest").strip()
    if rest:  # a paragraph: "Sources: A, B and C."
        paragraph = [rest]
        for line in lines[index + 1:]:
            if not line.strip():
                break
            paragraph.append(line.strip())
        return (*entries, " ".join(paragraph))
    current: list[str] | None = None
    for line in lines[index + 1:]:
        text = line.strip()
        if text.startswith("* "):
            if current:
                entries.append(" ".join(current))
            current = [text[2:]]
        elif current is None and not text:
            continue  # blank lines between the header and the first bullet
        elif current is not None and text and line.startswith(" "):
            current.append(text)  # a bullet's continuation line
        else:
            break  # the list ends at a blank line or unindented text
    if current:
        entries.append(" ".join(current))
    return tuple(entries)


def _data_versions(name: str) -> tuple[RuleVersion, ...]:
    """Dated tables of a selectable venue's data file (fees, clearance fees, tiers)."""
    from backtest.venues.defaults import DATA_FILES, venue_data

    if name not in DATA_FILES:
        return ()
    data = venue_data(name)
    where = f"backtest/venues/data/{DATA_FILES[name]}"
    out = [RuleVersion("fees maker/taker", f.effective_from, f.source or where, f.effective_from_known)
           for f in data.fees.versions]
    for symbol, schedule in sorted(data.clearance.items()):
        if symbol in data.symbol_aliases:  # the same table under the venue's ccxt name
            continue
        out += [RuleVersion(f"liquidation fee {symbol}", c.effective_from, c.source or where)
                for c in schedule.versions]
    for symbol, tiers in sorted(data.tiers.items()):
        if symbol in data.symbol_aliases:
            continue
        out += [RuleVersion(f"tiers {symbol}", start, where) for start, _ in tiers.versions]
    return tuple(out)


def _entry(name: str, module: ModuleType, *, selectable: bool, engine: Any = None) -> CatalogEntry:
    # a module holding several venues (bybit: linear and inverse) names each in VENUE_INFOS
    info: VenueInfo = getattr(module, "VENUE_INFOS", {}).get(name, module.VENUE_INFO)
    versions = info.rule_versions + (_data_versions(name) if selectable else ())
    return CatalogEntry(info=info, module=module.__name__, selectable=selectable,
                        rule_versions=versions, sources=docstring_sources(module.__doc__),
                        engine_sources=MappingProxyType(dict(engine.rule_versions) if engine else {}))


def venue_catalog() -> tuple[CatalogEntry, ...]:
    """Every venue module: the selectable ones (sorted), then the rules-only ones (sorted)."""
    from backtest.venues.base import VENUES, get_venue

    entries = []
    for name in sorted(VENUES):
        module = importlib.import_module(VENUES[name].split(":")[0])
        entries.append(_entry(name, module, selectable=True, engine=get_venue(name)))
    for name in sorted(RULES_ONLY):
        entries.append(_entry(name, importlib.import_module(RULES_ONLY[name]), selectable=False))
    return tuple(entries)
