"""Data-quality checks for canonical frames (vectorized; no per-row Python).

:func:`check` inspects a conformed frame and returns a :class:`QualityReport`; in strict
mode the caller raises (:meth:`QualityReport.raise_if_errors`), in lenient mode
:func:`repair` drops the rows that break an error rule, sorts, de-duplicates (the later row
wins) and the report's :attr:`~QualityReport.warnings` record what was done.

Rules (``error`` = strict mode refuses the input, ``warning`` = recorded only):

==================  ========  =========================================================
code                severity  rule
==================  ========  =========================================================
null_values         error     required columns hold no nulls
ts_out_of_range     error     2009-01-03 <= ts < 2100-01-01 (catches s/us read as ms)
bad_price           error     price columns are finite and > 0
ohlc_sanity         error     high >= max(open, close), low <= min(open, close), high >= low
misaligned_ts       error     candle ts is a multiple of the timeframe (sub-daily frames)
bad_value           error     enums (price_type, side, contract_type), tier sanity, NaN rate
unsorted            error     ts increases within each partition
duplicate_ts        error     no two rows share the dataset's key
missing_intervals   warning   no gap larger than one interval (candles, funding)
volume_missing      warning   last-price candles carry a volume (rows without one are
                              usually mark/index prices stored as last)
coverage            warning   a requested range is fully covered (see :func:`check_coverage`)
==================  ========  =========================================================
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import polars as pl

from data_loaders.errors import DataNotFoundError, DataValidationError
from data_loaders.schemas import CONTRACT_TYPES, PRICE_TYPES, TRADE_SIDES, get_schema, timeframe_ms

MIN_TS_MS = 1_230_940_800_000  # 2009-01-03, the Bitcoin genesis block
MAX_TS_MS = 4_102_444_800_000  # 2100-01-01
_SHOW_ROWS = 5
_DAY_MS = 86_400_000


@dataclass(frozen=True)
class QualityIssue:
    """One broken rule.

    Attributes
    ----------
    code : str
        Rule name (see the module table).
    severity : str
        ``"error"`` or ``"warning"``.
    count : int
        Number of offending rows (or missing intervals for ``missing_intervals``).
    rows : tuple of int
        The first offending row numbers (0-based frame rows, or file lines when the check
        was given ``first_line``).
    message : str
        What was expected and what was found.
    fix : str
        How to fix it.
    """

    code: str
    severity: str
    count: int
    rows: tuple[int, ...]
    message: str
    fix: str

    def describe(self, *, row_word: str = "rows") -> str:
        """One line: code, message, the first rows and the fix."""
        where = f" ({row_word} {', '.join(map(str, self.rows))}{'...' if self.count > len(self.rows) else ''})" if self.rows else ""
        return f"{self.code}: {self.message}{where}; fix: {self.fix}"


@dataclass(frozen=True)
class QualityReport:
    """Result of the checks on one frame or stored partition.

    Attributes
    ----------
    subject : str
        What was checked (a file path or ``dataset exchange symbol ...``).
    dataset : str
        Canonical dataset name.
    rows : int
        Rows checked.
    issues : tuple of QualityIssue
        Every broken rule, errors first.
    row_word : str
        ``"rows"`` (frame rows, 0-based) or ``"lines"`` (file lines, 1-based).
    """

    subject: str
    dataset: str
    rows: int
    issues: tuple[QualityIssue, ...] = field(default_factory=tuple)
    row_word: str = "rows"

    @property
    def errors(self) -> list[QualityIssue]:
        """Issues with severity ``error``."""
        return [i for i in self.issues if i.severity == "error"]

    @property
    def ok(self) -> bool:
        """True when no error rule is broken (warnings allowed)."""
        return not self.errors

    @property
    def warnings(self) -> list[str]:
        """Every issue as a human-readable line prefixed with the subject."""
        return [f"{self.subject}: {i.describe(row_word=self.row_word)}" for i in self.issues]

    def raise_if_errors(self) -> None:
        """Raise :class:`DataValidationError` listing every error (subject, rows, fix)."""
        if self.ok:
            return
        lines = "\n".join(f"  - {i.describe(row_word=self.row_word)}" for i in self.errors)
        raise DataValidationError(
            f"{self.subject}: {len(self.errors)} data-quality error(s) in {self.rows} {self.dataset} "
            f"rows; nothing was written:\n{lines}\n"
            "Use lenient mode (--lenient / strict=False) to drop the bad rows and keep the rest."
        )


def distinct(frame: pl.DataFrame, column: str) -> list:
    """The distinct non-null values of ``column``, in no particular order.

    Through ``select`` rather than ``frame[column]``: a column a file sets to one value is held
    by polars as a broadcast scalar, and taking it as a Series would write out one copy of the
    value per row (16 MB per million rows) just to find that one value.
    """
    return frame.select(pl.col(column).drop_nulls().unique()).to_series().to_list()


def _group_columns(dataset: str) -> list[str]:
    return ["exchange", "symbol", "timeframe", "price_type"] if dataset == "ohlcv" else ["exchange", "symbol"]


def _flags(dataset: str, frame: pl.DataFrame) -> dict[str, pl.Expr]:
    """Boolean per-row expressions, one per error rule that applies to ``dataset``."""
    schema = get_schema(dataset)
    flags: dict[str, pl.Expr] = {}
    required = [c for c in schema.column_names if c not in schema.nullable]
    flags["null_values"] = pl.any_horizontal([pl.col(c).is_null() for c in required])
    ts_ms = pl.col(schema.time_column).dt.epoch("ms")
    flags["ts_out_of_range"] = (ts_ms < MIN_TS_MS) | (ts_ms >= MAX_TS_MS)
    if schema.price_columns:
        flags["bad_price"] = pl.any_horizontal(
            [(pl.col(c).is_not_null() & (pl.col(c).is_nan() | ~pl.col(c).is_finite() | (pl.col(c) <= 0)))
             for c in schema.price_columns]
        )
    if dataset == "ohlcv":
        o, h, low, c = (pl.col(n) for n in ("open", "high", "low", "close"))
        flags["ohlc_sanity"] = (h < pl.max_horizontal(o, c)) | (low > pl.min_horizontal(o, c)) | (h < low)
        tf_ms = {tf: timeframe_ms(tf) for tf in distinct(frame, "timeframe")}
        aligned = [tf for tf, ms in tf_ms.items() if _DAY_MS % ms == 0]
        if aligned:
            interval = pl.col("timeframe").replace_strict(tf_ms, default=None, return_dtype=pl.Int64)
            flags["misaligned_ts"] = pl.col("timeframe").is_in(aligned) & ((ts_ms % interval) != 0)
    rules = _value_rules(dataset)
    if rules:
        flags["bad_value"] = pl.any_horizontal([bad for _, bad in rules])
    return flags


def _value_rules(dataset: str) -> list[tuple[str, pl.Expr]]:
    """The ``bad_value`` rule of ``dataset``, one (allowed values, breaking rows) pair per column.

    One definition: the row flag is their union and the refusal names the pairs that broke.
    """
    col = pl.col
    if dataset == "ohlcv":
        return [(f"price_type one of {', '.join(PRICE_TYPES)}", ~col("price_type").is_in(PRICE_TYPES)),
                ("volume >= 0", col("volume") < 0)]
    if dataset == "funding":
        return [("a finite rate", col("rate").is_nan() | ~col("rate").is_finite()),
                ("interval_hours > 0", (col("interval_hours") <= 0) | col("interval_hours").is_nan())]
    if dataset == "trades":
        return [(f"side one of {', '.join(TRADE_SIDES)}", ~col("side").is_in(TRADE_SIDES))]
    if dataset == "risk_tiers":
        return [("tier >= 1", col("tier") < 1),
                ("notional_floor >= 0", col("notional_floor") < 0),
                ("notional_cap > notional_floor", ~(col("notional_cap") > col("notional_floor"))),
                ("max_leverage >= 1", ~(col("max_leverage") >= 1)),
                ("0 < maint_margin_rate < 1",
                 ~((col("maint_margin_rate") > 0) & (col("maint_margin_rate") < 1))),
                ("a number maint_amount", col("maint_amount").is_nan())]
    if dataset == "markets":
        return [(f"contract_type one of {', '.join(CONTRACT_TYPES)}", ~col("contract_type").is_in(CONTRACT_TYPES))]
    return []


def broken_value_rules(dataset: str, frame: pl.DataFrame) -> list[str]:
    """The allowed-values texts of the ``bad_value`` pairs that some row of ``frame`` breaks."""
    return [allowed for allowed, bad in _value_rules(dataset) if frame.select(bad.fill_null(False).any()).item()]


def bad_value_message(dataset: str, broken: set[str] | list[str]) -> str:
    """The ``bad_value`` message naming the broken pairs, in the rule order of ``dataset``."""
    named = [allowed for allowed, _ in _value_rules(dataset) if allowed in broken]
    return f"expected {'; '.join(named) or 'values in their allowed range'}, found rows outside it"


_MESSAGES: dict[str, tuple[str, str]] = {
    "null_values": ("expected a value in every required column, found missing (null or unparsable) ones",
                    "re-download the file (it may be truncated) or map the right columns with --map"),
    "ts_out_of_range": ("expected timestamps between 2009-01-03 and 2100-01-01, found some outside; they "
                        "look like seconds or microseconds read as milliseconds",
                        "pass the right --ts-unit (s, ms or us)"),
    "bad_price": ("prices must be finite and > 0, found NaN, inf, zero or negative",
                  "drop those rows at the source or import with --lenient to skip them"),
    "ohlc_sanity": ("expected high >= max(open, close), low <= min(open, close) and high >= low",
                    "check the column mapping (--map) or import with --lenient to skip them"),
    "misaligned_ts": ("expected each candle ts to be a multiple of the timeframe, found one that is not",
                      "check --timeframe and --ts-unit; ts must be the bar OPEN time"),
    "bad_value": ("expected values in their allowed set or range, found rows outside it",
                  "check the column mapping and the source file"),
    "unsorted": ("timestamps must increase within each symbol/timeframe, found steps backwards",
                 "sort the input by time, or import with --lenient (it sorts)"),
    "duplicate_ts": ("expected one row per de-duplication key, found rows that repeat it",
                     "remove the repeated rows, or import with --lenient (the later row wins)"),
}


def _issue(code: str, rows: pl.Series, first_line: int | None, count: int | None = None) -> QualityIssue:
    """The error issue of rule ``code`` hit by frame ``rows`` (the first shown; ``count`` all of them)."""
    message, fix = _MESSAGES[code]
    shown = rows.head(_SHOW_ROWS).to_list()
    if first_line is not None:
        shown = [r + first_line for r in shown]
    return QualityIssue(code, "error", len(rows) if count is None else count, tuple(shown), message, fix)


def _error_mask(dataset: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Frame of ``_row`` plus one boolean column per error rule."""
    schema = get_schema(dataset)
    groups = _group_columns(dataset)
    keys = list(schema.keys) + (["exchange"] if "exchange" not in schema.keys else [])
    flags = _flags(dataset, frame)
    time = pl.col(schema.time_column)
    single = _single_partition(frame, groups) and set(keys) <= {*groups, schema.time_column}
    # one partition (one imported file): a plain diff instead of a window per partition
    step = time.diff() if single else time.diff().over(groups)
    flags["unsorted"] = (step < pl.duration(milliseconds=0)).fill_null(False)
    in_order = single and not frame.select(flags["unsorted"].any()).item()
    # times in order within one partition: a repeated key is a zero step (no hashing of the keys)
    flags["duplicate_ts"] = ((step == pl.duration(milliseconds=0)).fill_null(False) if in_order
                             else ~pl.struct(keys).is_first_distinct())
    # lazily: the rules share sub-expressions (the epoch-ms times, the step), which the lazy
    # engine computes once instead of once per rule (less time and fewer temporary columns)
    return (frame.lazy().with_row_index("_row")
            .select("_row", *(e.fill_null(False).alias(k) for k, e in flags.items())).collect())


def _single_partition(frame: pl.DataFrame, groups: list[str]) -> bool:
    """True when every row belongs to one partition (the partition columns hold one value each)."""
    if frame.is_empty():
        return True
    counts = frame.select(pl.col(groups).n_unique()).row(0)
    return all(n == 1 for n in counts)


def check(dataset: str, frame: pl.DataFrame, *, subject: str, first_line: int | None = None) -> QualityReport:
    """Run every rule on a conformed frame.

    Parameters
    ----------
    dataset : str
        Canonical dataset name.
    frame : polars.DataFrame
        Output of :func:`data_loaders.schemas.conform`.
    subject : str
        Named in every message (a file path, or what was written).
    first_line : int, optional
        File line of frame row 0; when given, issues name file lines instead of rows.

    Returns
    -------
    QualityReport
    """
    mask = _error_mask(dataset, frame)
    issues = []
    for code in mask.columns[1:]:
        hits = mask.filter(pl.col(code))["_row"]
        if len(hits):
            issue = _issue(code, hits, first_line)
            if code == "bad_value":
                issue = replace(issue, message=bad_value_message(dataset, broken_value_rules(dataset, frame)))
            issues.append(issue)
    # rows in time order without a repeated key (per partition) need no re-sort to find gaps
    ordered = not any(i.code in ("unsorted", "duplicate_ts", "null_values") for i in issues)
    issues.extend(_gap_issues(dataset, frame, ordered=ordered))
    issues.extend(_volume_issues(dataset, frame))
    return QualityReport(subject, dataset, frame.height, tuple(issues),
                         "lines" if first_line is not None else "rows")


def repair(dataset: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Drop rows that break a per-row error rule, sort by time and de-duplicate (last wins)."""
    schema = get_schema(dataset)
    mask = _error_mask(dataset, frame)
    row_rules = [c for c in mask.columns[1:] if c not in ("unsorted", "duplicate_ts")]
    keep = ~pl.any_horizontal([pl.col(c) for c in row_rules]) if row_rules else pl.lit(True)
    good = frame.filter(mask.select(keep).to_series())
    keys = list(schema.keys) + (["exchange"] if "exchange" not in schema.keys else [])
    return good.unique(subset=keys, keep="last", maintain_order=True).sort(
        [*_group_columns(dataset), schema.time_column])


def _volume_issues(dataset: str, frame: pl.DataFrame) -> list[QualityIssue]:
    """Last-price candles without volume (issue 9: mark candles stored as last passed validate)."""
    if dataset != "ohlcv" or frame.is_empty():
        return []
    last = frame.filter(pl.col("price_type") == "last")
    missing = int(last["volume"].is_null().sum()) if last.height else 0
    return volume_issue(missing, last.height)


def volume_issue(missing: int, last_rows: int) -> list[QualityIssue]:
    """The ``volume_missing`` warning for ``missing`` of ``last_rows`` last-price candles (none if 0)."""
    if missing == 0:
        return []
    return [QualityIssue(
        "volume_missing", "warning", missing, (),
        f"{missing:,} of {last_rows:,} last-price candles have no volume",
        "last (trade) prices come with a volume; mark or index candles may have been stored as last: "
        "remove them with `margincall data rm ohlcv ... --price-type last` and import them with --price-type mark",
    )]


def _gap_issues(dataset: str, frame: pl.DataFrame, *, ordered: bool = False) -> list[QualityIssue]:
    """Missing candle intervals / funding settlements, per partition (warnings)."""
    return gap_issue(dataset, missing_intervals(dataset, frame, ordered=ordered))


def gap_issue(dataset: str, counts: pl.DataFrame | None) -> list[QualityIssue]:
    """The ``missing_intervals`` warning from per-partition counts (:func:`missing_intervals`)."""
    if counts is None or counts.is_empty():
        return []
    total = int(counts["missing"].sum())
    if total == 0:
        return []
    worst = counts.sort("missing", descending=True).row(0, named=True)
    label = "candle intervals" if dataset == "ohlcv" else "funding settlements"
    return [QualityIssue(
        "missing_intervals", "warning", total, (),
        f"{total} missing {label} (largest share: {worst['symbol']} {worst['missing']})",
        "expected for exchange outages; otherwise fetch or import the missing range",
    )]


def missing_intervals(dataset: str, frame: pl.DataFrame, *, ordered: bool = False) -> pl.DataFrame | None:
    """Count missing intervals per partition of an ohlcv or funding frame.

    For candles the interval is the timeframe; for funding it is ``interval_hours`` of the
    later settlement (venues move symbols from 8h to 4h or 1h). Duplicates are ignored.

    Parameters
    ----------
    dataset : str
        ``ohlcv`` or ``funding`` (None is returned for the others).
    frame : polars.DataFrame
        Conformed rows.
    ordered : bool, default False
        The caller knows that times strictly increase within each partition (the quality
        check found neither ``unsorted`` nor ``duplicate_ts``); skips the de-duplication and
        the sort, which cost most of the check on a clean import.

    Returns
    -------
    polars.DataFrame or None
        Partition columns plus ``missing`` (int); None for datasets without a cadence.
    """
    if dataset not in ("ohlcv", "funding") or frame.is_empty():
        return None
    groups = _group_columns(dataset)
    ts = pl.col("ts").dt.epoch("ms")
    if dataset == "ohlcv":
        tf_ms = {tf: timeframe_ms(tf) for tf in distinct(frame, "timeframe")}
        interval = pl.col("timeframe").replace_strict(tf_ms, return_dtype=pl.Int64)
    else:
        interval = (pl.col("interval_hours") * 3_600_000).round(0).cast(pl.Int64)
    rows = frame.lazy() if ordered else frame.lazy().unique(subset=[*groups, "ts"]).sort([*groups, "ts"])
    step = ts.diff() if ordered and _single_partition(frame, groups) else ts.diff().over(groups)
    steps = (rows.with_columns(_step=step, _interval=interval)
             .with_columns(_gap=pl.when(pl.col("_step") > pl.col("_interval"))
                           .then(pl.col("_step") // pl.col("_interval") - 1
                                 + (pl.col("_step") % pl.col("_interval") > 0).cast(pl.Int64))
                           .otherwise(0)))
    return steps.group_by(groups).agg(missing=pl.col("_gap").sum()).sort(groups).collect()


def check_coverage(frame: pl.DataFrame, *, dataset: str, start_ms: int, end_ms: int,
                   interval_ms: int, subject: str) -> QualityReport:
    """Report how much of ``[start_ms, end_ms)`` a stored series covers.

    Parameters
    ----------
    frame : polars.DataFrame
        Canonical rows of one partition (e.g. mark candles or funding of one symbol).
    dataset : str
        Dataset name, for the message.
    start_ms, end_ms : int
        Requested range, epoch milliseconds, half-open.
    interval_ms : int
        Expected spacing (candle timeframe, or funding interval).
    subject : str
        Named in the message (e.g. ``"mark 1h BTC/USDT:USDT"``).

    Returns
    -------
    QualityReport
        With one ``coverage`` warning when fewer points than expected are present.
    """
    expected = max(0, -(-(end_ms - start_ms) // interval_ms))
    ts = frame["ts"].dt.epoch("ms") if not frame.is_empty() else pl.Series([], dtype=pl.Int64)
    present = int(ts.filter((ts >= start_ms) & (ts < end_ms)).n_unique()) if len(ts) else 0
    issues: tuple[QualityIssue, ...] = ()
    if present < expected:
        pct = 100.0 * present / expected if expected else 0.0
        issues = (QualityIssue(
            "coverage", "warning", expected - present, (),
            f"{present} of {expected} expected points present in the requested range ({pct:.1f}% covered)",
            "fetch or import the missing range (margincall data fetch / margincall data import)",
        ),)
    return QualityReport(subject, dataset, frame.height, issues)


def validate_store(store, *, exchange: str | None = None, symbol: str | None = None,
                   timeframe: str | None = None, start: object = None,
                   end: object = None) -> tuple[list[QualityReport], list[str]]:
    """Check every stored partition matching the filters, plus mark and funding coverage.

    Parameters
    ----------
    store : MarketStore
        The store to check.
    exchange, symbol, timeframe : str, optional
        Filters (``timeframe`` applies to candles).
    start, end : epoch ms, datetime or ISO string, optional
        Range to check; coverage of mark candles and funding is measured over it (default:
        the span of each symbol's last-price candles).

    Returns
    -------
    (list of QualityReport, list of str)
        One report per partition (and per coverage check), and checksum problems
        (:meth:`MarketStore.verify`).
    """
    from data_loaders.schemas import DATASETS, to_ms

    start_ms = to_ms(start) if start is not None else None
    end_ms = to_ms(end) if end is not None else None
    reports: list[QualityReport] = []
    spans: dict[tuple[str, str], tuple[int, int]] = {}
    ohlcv_parts: list[dict] = []
    for dataset in DATASETS:
        parts = store.partitions(dataset)
        if dataset == "ohlcv":
            ohlcv_parts = parts  # reused by the coverage checks instead of walking the tree again
        for part in parts:
            if (exchange and part["exchange"] != exchange) or (symbol and part["symbol"] != symbol):
                continue
            if dataset == "ohlcv" and timeframe and part["timeframe"] != timeframe:
                continue
            frame = store.read(dataset, exchange=part["exchange"], symbol=part["symbol"],
                               timeframe=part["timeframe"], price_type=part["price_type"],
                               start=start_ms, end=end_ms)
            label = " ".join(v for v in (dataset, part["exchange"], part["symbol"], part["timeframe"],
                                         part["price_type"]) if v)
            reports.append(check(dataset, frame, subject=label))
            if dataset == "ohlcv" and part["price_type"] == "last" and ":" in part["symbol"] and frame.height:
                times = frame["ts"].dt.epoch("ms")
                key = (part["exchange"], part["symbol"])
                lo, hi = spans.get(key, (int(times.min()), int(times.max()) + timeframe_ms(part["timeframe"])))
                spans[key] = (min(lo, int(times.min())),
                              max(hi, int(times.max()) + timeframe_ms(part["timeframe"])))
    for (ex, sym), (lo, hi) in spans.items():
        lo, hi = start_ms if start_ms is not None else lo, end_ms if end_ms is not None else hi
        reports.extend(_coverage_reports(store, ex, sym, lo, hi, timeframe, ohlcv_parts))
    return reports, store.verify()


def _coverage_reports(store, exchange: str, symbol: str, start_ms: int, end_ms: int,
                      timeframe: str | None, ohlcv_parts: list[dict]) -> list[QualityReport]:
    """Mark-candle and funding coverage of ``[start_ms, end_ms)`` for one perpetual.

    ``ohlcv_parts`` is ``store.partitions("ohlcv")``, already walked by :func:`validate_store`.
    """
    out = []
    marks = [p for p in ohlcv_parts if p["exchange"] == exchange and p["symbol"] == symbol
             and p["price_type"] == "mark" and (timeframe is None or p["timeframe"] == timeframe)]
    empty = pl.DataFrame(schema={"ts": pl.Datetime("ms", "UTC")})
    for part in marks or [{"timeframe": timeframe or "1h", "missing": True}]:
        frame = empty if part.get("missing") else store.read(
            "ohlcv", exchange=exchange, symbol=symbol, timeframe=part["timeframe"], price_type="mark",
            start=start_ms, end=end_ms)
        out.append(check_coverage(frame, dataset="ohlcv", start_ms=start_ms, end_ms=end_ms,
                                  interval_ms=timeframe_ms(part["timeframe"]),
                                  subject=f"coverage: mark {part['timeframe']} {exchange} {symbol}"))
    interval_ms = 8 * 3_600_000
    try:  # one read: a missing funding partition is an empty series, not an error
        frame = store.read("funding", exchange=exchange, symbol=symbol, start=start_ms, end=end_ms)
    except DataNotFoundError:
        frame = empty
    if frame.height:
        interval_ms = int(frame["interval_hours"].min() * 3_600_000)
    out.append(check_coverage(frame, dataset="funding", start_ms=start_ms, end_ms=end_ms,
                              interval_ms=interval_ms, subject=f"coverage: funding {exchange} {symbol}"))
    return out
