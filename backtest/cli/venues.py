"""``margincall venues``: every venue the project has rules for, and what it covers.

One block per venue: contract types and margin modes its formulas cover, whether ``--venue``
can select it (or "rules only, not yet selectable"), the dated rule tables it holds (tiers,
fees, parameter sets by ``effective_from``) and its sources. ``--json`` prints the same as
JSON. The facts are read from the venue modules (:mod:`backtest.venues.catalog`); this
module only lays them out.
"""
from __future__ import annotations

import json
from typing import Annotated, Any, Optional

import typer


def register(app: typer.Typer) -> None:
    """Attach the ``venues`` command to the root application."""
    app.command("venues")(venues)


def _when(version: Any) -> str:
    from backtest.formatting import fmt_ts

    if version.effective_from is None:
        return "undated"
    text = fmt_ts(version.effective_from).removesuffix(" 00:00")
    return text if version.date_known else f"{text} (date assumed)"


def _lines(entry: Any) -> list[str]:
    """The text block of one :class:`backtest.venues.catalog.CatalogEntry`."""
    info = entry.info
    status = (f"selectable with --venue {info.name}" if entry.selectable
              else "rules only, not yet selectable with --venue")
    lines = [f"{info.name}: {info.title}",
             f"  status:         {status}",
             f"  module:         {entry.module}",
             f"  contract types: {', '.join(info.contract_types)}",
             f"  margin modes:   {', '.join(info.margin_modes)} "
             f"({', '.join(f'{kind}/{mode}' for kind, mode in info.modes)})"]
    groups: dict[tuple[str, str], list[str]] = {}
    for version in entry.rule_versions:
        groups.setdefault((version.what, version.source), []).append(_when(version))
    if groups:
        lines.append("  rule versions (effective from, UTC):")
        lines += [f"    {what}: {', '.join(dates)}  [source: {source}]"
                  for (what, source), dates in groups.items()]
    else:
        lines.append("  rule versions:  none held (tables are passed in by the caller)")
    if entry.engine_sources:
        lines.append("  engine rule versions:")
        lines += [f"    {key}: {value}" for key, value in entry.engine_sources.items()]
    lines.append("  sources:")
    lines += [f"    - {source}" for source in entry.sources]
    return lines


def venues(
    name: Annotated[Optional[str], typer.Argument(
        help="Show only this venue (default: all).", show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """List the venues: contract types, margin modes, selectable or rules only, rule versions, sources."""
    from backtest.cli.output import console, fail
    from backtest.errors import did_you_mean
    from backtest.venues.catalog import venue_catalog

    entries = venue_catalog()
    if name is not None:
        names = tuple(entry.info.name for entry in entries)
        if name not in names:
            raise fail(f"venue {name!r}: expected one of {', '.join(names)}{did_you_mean(name, names)}")
        entries = tuple(entry for entry in entries if entry.info.name == name)
    out = console()
    if as_json:
        text = json.dumps([entry.as_dict() for entry in entries], indent=2, ensure_ascii=False)
        out.print(text, highlight=False, soft_wrap=True)
        return
    for index, entry in enumerate(entries):
        if index:
            out.print("")
        out.print("\n".join(_lines(entry)), highlight=False, soft_wrap=True)
