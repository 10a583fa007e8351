"""Provenance of risk-lab outputs (replay, stress, mc, survive, sweep, cascade): the same record
as a run's manifest, written beside their tables and shown collapsed at the end of their pages.

A manifest holds: ``kind``; ``data``, the market-data partitions read, each with its sha256
(as the one market loader records them, ``MarketData.sources`` / ``WindowData.sources``);
``rules``, the venue's rule set and the tier tables in force; ``config``, the run
configuration and the command's own inputs; ``seed``; ``packages`` (``backtest.results.package_versions``);
``files``, each written table's size and sha256 (``backtest.runfolder.file_record``, the run
folder's own record) and ``created_at``. The manifest is written atomically (temp + rename),
after the tables it lists.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = ["MANIFEST_SUFFIX", "output_manifest", "rule_versions", "unique_sources", "write_output_manifest"]

#: A single-file output ``x.parquet`` gets its manifest as ``x.manifest.json``.
MANIFEST_SUFFIX = ".manifest.json"


def unique_sources(groups: Iterable[Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """The data partitions of several windows, each once, in first-seen order."""
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for sources in groups:
        for source in sources:
            key = json.dumps(source, sort_keys=True, default=str)
            if key not in seen:
                seen.add(key)
                out.append(dict(source))
    return out


def rule_versions(venue: str, tiers: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The venue's rule set (``Venue.describe``) and the labels of the tier tables used."""
    from backtest.venues.base import get_venue
    from backtest.venues.errors import VenueError

    try:
        described: Any = get_venue(venue).describe()
    except VenueError:  # a rule set outside the engine's registry (a cascade-only venue)
        described = {"name": venue}
    rules: dict[str, Any] = {"venue": described}
    if tiers:
        rules["tiers"] = {name: _tier_label(table) for name, table in tiers.items()}
    return rules


def _tier_label(table: Any) -> Any:
    """A tier table's label, or a schedule's labels in version order."""
    versions = getattr(table, "versions", None)
    if versions is not None:
        return [getattr(t, "label", type(t).__name__) for _, t in versions]
    return getattr(table, "label", type(table).__name__)


def output_manifest(kind: str, *, config: Any = None, inputs: Mapping[str, Any] | None = None,
                    seed: int | None = None, sources: Sequence[Mapping[str, Any]] = (),
                    rules: Mapping[str, Any] | None = None, warnings: Sequence[str] = ()) -> dict[str, Any]:
    """A provenance record of one risk-lab output (see the module docstring).

    Parameters
    ----------
    kind : str
        ``replay``, ``stress``, ``mc``, ``survive``, ``sweep`` or ``cascade``.
    config : RunConfig or mapping, optional
        The run configuration (``RunConfig.to_dict`` is recorded).
    inputs : mapping, optional
        The command's own inputs (strategy, leverages, scenarios, model, grid ...).
    seed : int, optional
        The random seed (None when the output is not random).
    sources : sequence of dict
        Market-data partitions read, with their sha256.
    rules : mapping, optional
        :func:`rule_versions`.
    warnings : sequence of str
        Data-quality warnings of the inputs.
    """
    from backtest.results import package_versions

    if config is not None and hasattr(config, "to_dict"):
        config = config.to_dict()
    return {"kind": kind, "config": _jsonable(config or {}), "inputs": _jsonable(dict(inputs or {})),
            "seed": seed, "data": _jsonable(list(sources)), "rules": _jsonable(dict(rules or {})),
            "quality_warnings": list(dict.fromkeys(warnings)), "packages": package_versions()}


def write_output_manifest(path: str | Path, manifest: Mapping[str, Any],
                          tables: Mapping[str, str | Path] = ()) -> Path:
    """Write ``manifest`` (plus ``files``: each table's size and sha256, and ``created_at``) to
    ``path`` atomically; return the path.

    ``tables`` maps a name to a file already written (its record is taken now, so the
    manifest describes exactly the bytes on disk).
    """
    from backtest.runfolder import file_record

    path = Path(path)
    document = dict(manifest)
    document["files"] = {name: file_record(Path(file)) for name, file in dict(tables).items()}
    document["created_at"] = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(json.dumps(document, indent=1, allow_nan=False))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _jsonable(value: Any) -> Any:
    """``value`` with NaN / inf as None, tuples as lists, other objects as text (JSON-ready)."""
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)
