"""How a store write merges into a stored file, and what it refuses to merge.

A write is planned file by file before anything is written (:func:`plan_file`), so the
whole write can be refused when it would silently change stored rows
(:func:`refuse_changes`), hold non-finite numbers (:func:`refuse_non_finite`) or leave a
risk-tier table the engine would refuse (:func:`refuse_bad_tier_tables`, the engine's own
rules from :mod:`data_loaders.tier_rules`).

Rows are compared on the dataset's key (CONTRACTS §3): a key not stored yet is *added*; a
stored key with identical values is *unchanged* (re-importing the same file is a no-op); a
stored key with different values is *changed*, which needs ``replace=True``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import polars as pl

from data_loaders.errors import DataError, DataValidationError, ReplaceRefusedError
from data_loaders.schemas import conform, get_schema
from data_loaders.store_io import Manifest, commit, stage_parquet
from data_loaders.tier_rules import table_problem, tier_numbers_problem

#: Non-finite values a dataset may store on purpose: an unbounded top tier (``+inf`` cap) and
#: fees unknown to both the file and the built-in venue data (NaN, see markets_import).
_NON_FINITE_OK = {("risk_tiers", "notional_cap"): "+inf",
                  ("markets", "maker_fee"): "nan", ("markets", "taker_fee"): "nan",
                  ("markets", "liquidation_fee_rate"): "nan"}


@dataclass
class FilePlan:
    """The planned new content of one stored file.

    Attributes
    ----------
    target : Path
        The file.
    merged : polars.DataFrame or None
        Its new rows (None or empty: delete the file).
    added, changed, unchanged, removed : int
        Row counts against the stored file.
    samples : list of str
        A few changed rows described (for the refusal message).
    writes : bool
        False when the file needs no rewrite.
    write_summary : dict
        What the manifest records for this write.
    """

    target: Path
    merged: pl.DataFrame | None
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    samples: list[str] = field(default_factory=list)
    writes: bool = True
    write_summary: dict = field(default_factory=dict)


def _corrupt(target: Path, exc: BaseException) -> DataError:
    return DataError(
        f"stored file {target}: expected a readable Parquet file, found a corrupt one "
        f"({str(exc).splitlines()[0]}); nothing was written. Move it away and re-import its range"
    )


def _read_stored(target: Path) -> pl.DataFrame | None:
    if not target.exists():
        return None
    try:
        return pl.read_parquet(target)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise _corrupt(target, exc) from exc


def _read_stored_values(target: Path, schema, market: dict) -> pl.DataFrame | None:
    """The stored file read without its partition columns, when they all hold ``market``'s values.

    A stored file holds one partition (its folder), so those columns are constants: reading
    them (four strings per candle) and hashing them in the join and the de-duplication cost
    most of a merge's memory. None when the file holds anything else (then it is read whole).
    """
    try:
        lazy = pl.scan_parquet(target)
        names = lazy.collect_schema().names()
        if not set(schema.partitions) <= set(names):
            return None
        same = lazy.select(pl.col(c).eq_missing(pl.lit(market[c])).all() for c in schema.partitions).collect()
        if not all(same.row(0)):
            return None
        values = pl.read_parquet(target, columns=[c for c in names if c not in schema.partitions])
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise _corrupt(target, exc) from exc
    return values.with_columns(pl.lit(market[c]).alias(c) for c in schema.partitions)


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _strictly_increasing(frame: pl.DataFrame, schema) -> bool:
    """True when one file's rows are already unique and in time order (a checked import).

    Rows of one plan share the partition, so where the key is the partition plus the time
    (candles, funding) strictly increasing times mean no duplicate key and nothing to sort:
    the O(n) test saves a hash de-duplication and a sort of every imported file.
    """
    if not set(schema.keys) <= {*schema.partitions, schema.time_column} or frame.height < 2:
        return frame.height < 2
    return bool((frame[schema.time_column].diff().drop_nulls() > timedelta(0)).all())


def _one_market(frame: pl.DataFrame, schema) -> dict | None:
    """The partition values of ``frame`` when its key is the partition plus the time and every row
    shares one partition (a candle or funding file period), else None."""
    if not set(schema.keys) <= {*schema.partitions, schema.time_column} or frame.is_empty():
        return None
    first = frame.select(schema.partitions).row(0, named=True)
    if None in first.values() or not all(frame.select(pl.col(c).eq(pl.lit(v)).all() for c, v in first.items()).row(0)):
        return None
    return first


def plan_file(new: pl.DataFrame, target: Path, schema) -> FilePlan:
    """Merge canonical rows of one file period into the stored file (in memory).

    The merged rows are the stored rows whose key the new rows lack plus the new rows, in time
    order (the newer write wins); ``merged`` stays None when nothing is added or changed. When
    the key is the partition plus the time (candles, funding), rows are matched on the time
    alone, and the stored file's constant partition columns are not read
    (:func:`_read_stored_values`): the same merge, for a fraction of the memory.
    """
    keys = list(schema.keys)
    time = schema.time_column
    if not _strictly_increasing(new, schema):
        new = new.unique(subset=keys, keep="last", maintain_order=True)
    times = new[time].dt.epoch("ms")
    summary = {"range": [int(times.min()), int(times.max())], "rows": new.height}
    if not target.exists():
        merged = new if _strictly_increasing(new, schema) else new.sort(time)
        return FilePlan(target, merged, added=new.height,
                        write_summary={**summary, "added": new.height, "replaced": 0})
    market = _one_market(new, schema)
    old = _read_stored_values(target, schema, market) if market is not None else None
    if old is None:
        old, on, right = _read_stored(target), keys, new
    else:
        on, right = [time], new.drop(schema.partitions)  # one partition on both sides: the time is the key
    old = conform(schema.name, old)  # a file of an older version may lack a nullable column
    values = [c for c in right.columns if c not in on]
    both = old.join(right, on=on, how="inner", suffix="__new", nulls_equal=True)
    differs = pl.any_horizontal([~pl.col(c).eq_missing(pl.col(f"{c}__new")) for c in values]) if values else pl.lit(False)
    changed = both.filter(differs)
    plan = FilePlan(target, None, added=new.height - both.height, changed=changed.height,
                    unchanged=both.height - changed.height)
    for row in changed.head(3).iter_rows(named=True):
        diffs = [f"{c} {row[c]} -> {row[c + '__new']}" for c in values
                 if not (row[c] == row[c + "__new"] or (row[c] != row[c] and row[c + "__new"] != row[c + "__new"]))]
        when = row[time]
        plan.samples.append(f"{when:%Y-%m-%d %H:%M} ({', '.join(diffs[:4])})")
    del both, changed
    plan.writes = bool(plan.added or plan.changed)
    plan.write_summary = {**summary, "added": plan.added, "replaced": plan.changed, "unchanged": plan.unchanged}
    if on == keys:
        plan.merged = (pl.concat([old, new], how="vertical")
                       .unique(subset=keys, keep="last", maintain_order=True).sort(time))
    elif plan.writes:  # the stored rows the new ones do not replace, then the new ones, in time order
        kept = old.join(new.select(time), on=time, how="anti")
        plan.merged = pl.concat([kept, new.select(old.columns)], how="vertical").sort(time)
    return plan


def refuse_changes(plans: list[FilePlan], schema, *, source: str, root: Path) -> None:
    """Raise :class:`ReplaceRefusedError` when any plan changes stored rows (nothing is written)."""
    changed = [p for p in plans if p.changed]
    if not changed:
        return
    total = sum(p.changed for p in changed)
    stored = sum(p.changed + p.unchanged for p in plans)
    per_partition: dict[str, list[int]] = {}
    for plan in changed:
        counts = per_partition.setdefault(plan.target.parent.parent.relative_to(root).as_posix(), [0, 0])
        counts[0] += plan.changed
        counts[1] += 1
    where = "; ".join(f"{n:,} in {files} file(s) of {partition}" for partition, (n, files) in list(per_partition.items())[:3])
    sample = "; ".join(changed[0].samples)
    hint = ""
    if schema.name == "ohlcv":
        hint = (" If the file holds mark or index prices, import it with --price-type mark (or index);"
                " they are stored apart from last-price candles.")
    raise ReplaceRefusedError(
        f"{source}: would change {total:,} stored {schema.name} row(s) (of {stored:,} it overlaps) "
        f"with different values ({where}; e.g. {sample}); nothing was written.{hint} If the new rows "
        "are right and should overwrite the stored ones, run the import again with --replace"
    )


def refuse_non_finite(dataset: str, frame: pl.DataFrame, *, subject: str) -> None:
    """Refuse inf / NaN in any float column (naming column and row), except the allowed ones.

    Price columns are left to the quality check's own finite-and-positive rule, which lenient
    imports can repair by dropping the rows; every other number has no such rule.
    """
    raise_non_finite(dataset, non_finite_found(dataset, frame), subject=subject)


def non_finite_found(dataset: str, frame: pl.DataFrame, *, offset: int = 0) -> dict[str, tuple[int, dict]]:
    """Per float column holding refused non-finite values: (rows, first such row with ``_row``).

    ``offset`` is the frame row of ``frame``'s row 0 (an input checked chunk by chunk); the
    columns come in schema order, so the first one is the one :func:`raise_non_finite` names.
    """
    schema = get_schema(dataset)
    found: dict[str, tuple[int, dict]] = {}
    for name, dtype in schema.columns:
        if not dtype.is_float() or name in schema.price_columns:
            continue
        allowed = _NON_FINITE_OK.get((dataset, name))
        col = pl.col(name)
        bad = col.is_infinite() | col.is_nan()
        if allowed == "+inf":
            bad = col.is_nan() | (col == -math.inf)
        elif allowed == "nan":
            bad = col.is_infinite()
        rows = frame.with_row_index("_row", offset=offset).filter(bad.fill_null(False))
        if rows.height:
            found[name] = (rows.height, rows.row(0, named=True))
    return found


def raise_non_finite(dataset: str, found: dict[str, tuple[int, dict]], *, subject: str) -> None:
    """Raise :class:`DataValidationError` for the first column of :func:`non_finite_found` (if any)."""
    if not found:
        return
    name, (count, first) = next(iter(found.items()))
    time_column = get_schema(dataset).time_column
    raise DataValidationError(
        f"{subject}: {dataset} column {name!r}: expected finite numbers, found {first[name]} in "
        f"{count:,} row(s) (first: row {first['_row'] + 1}, {time_column} {first[time_column]}); "
        "nothing was written: fix or drop those rows in the source file"
    )


def refuse_bad_tier_tables(plans: list[FilePlan], *, subject: str) -> None:
    """Check every tier table a write leaves stored with the engine's rules (:mod:`tier_rules`)."""
    for plan in plans:
        if plan.merged is None or plan.merged.is_empty():
            continue
        for (symbol, start), group in plan.merged.sort("tier").group_by(
                ["symbol", "effective_from"], maintain_order=True):
            label = f"{subject}: tier table {symbol} effective {start:%Y-%m-%d %H:%M}"
            problem = tier_numbers_problem(group["tier"].to_list(), label) or table_problem(
                [SimpleNamespace(floor=r["notional_floor"], cap=r["notional_cap"], max_leverage=r["max_leverage"],
                                 mmr=r["maint_margin_rate"], cum=r["maint_amount"]) for r in group.iter_rows(named=True)],
                label)
            if problem:
                raise DataValidationError(
                    f"{problem}. The engine refuses such a table, so it was not stored (nothing was written); "
                    "fix the file, or pass --effective-from to store it as a new version instead of merging"
                )


def removal_plan(path: Path, schema, start_ms: int | None, end_ms: int | None) -> FilePlan:
    """The plan that drops the rows of ``path`` inside ``[start_ms, end_ms)``."""
    old = _read_stored(path)
    assert old is not None  # the walker listed it
    time = pl.col(schema.time_column).dt.epoch("ms")
    inside = pl.lit(True)
    if start_ms is not None:
        inside = inside & (time >= start_ms)
    if end_ms is not None:
        inside = inside & (time < end_ms)
    kept = old.filter(~inside)
    removed = old.height - kept.height
    plan = FilePlan(path, kept if kept.height else None, removed=removed, writes=removed > 0)
    plan.write_summary = {"removed": removed, "range": [start_ms, end_ms]}
    return plan


def stage_plan(root: Path, plan: FilePlan, manifest: dict, time_column: str, write: dict,
               swept: set[Path]) -> tuple[Path | None, Path]:
    """Stage one plan that writes: its temporary file (or its deletion) and its manifest entry.

    Returns the move for :func:`data_loaders.store_io.commit`. The caller holds the store lock.
    Leftover temporary files of killed writes are swept once per folder (``swept``): sweeping
    again before each plan would delete the files this write staged there already (a
    multi-day trades write kept only its last day).
    """
    rel = plan.target.relative_to(root).as_posix()
    if plan.merged is None or plan.merged.is_empty():
        manifest["files"].pop(rel, None)
        return None, plan.target
    plan.target.parent.mkdir(parents=True, exist_ok=True)
    if plan.target.parent not in swept:
        swept.add(plan.target.parent)
        for stale in plan.target.parent.glob(".*.tmp"):
            stale.unlink(missing_ok=True)  # a killed write's leftovers (we hold the lock)
    tmp, digest = stage_parquet(plan.merged, plan.target)
    Manifest.record(manifest, rel, sha256=digest, frame=plan.merged, time_column=time_column,
                    write={**write, "written_at": datetime.now(timezone.utc).isoformat(), **plan.write_summary})
    return tmp, plan.target


def discard_staged(moves: list[tuple[Path | None, Path]]) -> None:
    """Remove the temporary files of moves that will not be committed (the store is unchanged)."""
    for tmp, _ in moves:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    moves.clear()


def commit_plans(root: Path, plans: list[FilePlan], manifest: dict, time_column: str, write: dict) -> None:
    """Stage every file a write changes, then journal and apply them as one commit (store_io).

    The caller holds the store lock. Files with nothing new are left alone (their checksum
    too); emptied files are deleted. Any failure before the commit point removes the staged
    files and leaves the store unchanged.
    """
    moves: list[tuple[Path | None, Path]] = []
    swept: set[Path] = set()
    try:
        for plan in plans:
            if plan.writes:
                moves.append(stage_plan(root, plan, manifest, time_column, write, swept))
    except BaseException:
        discard_staged(moves)
        raise
    if moves:
        commit(root, manifest, moves)
