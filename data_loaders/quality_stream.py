"""The quality rules of :func:`data_loaders.quality.check`, fed chunk by chunk with O(1) state.

An import streams its file through :class:`ChunkedCheck` one parsed block at a time, so the
check never holds the file. The rules are the same expressions (:func:`quality._error_mask`,
:func:`quality.missing_intervals`); what crosses a chunk boundary is carried as the last row
of the previous chunk, prepended to the next one: a repeated timestamp (a zero step), a step
backwards and a gap that straddle the boundary are found exactly as in one pass. Row numbers
are offset by the rows seen before, so the report names the same rows (or file lines).

This holds for one market whose times never step backwards and are never missing, which is
every well-formed import (a Binance dump is one market in time order). Elsewhere a duplicate
may sit anywhere in the file, which no bounded state can find, so :meth:`ChunkedCheck.feed`
turns :attr:`ChunkedCheck.streamable` off and the caller checks the input whole instead
(such an input is refused in strict mode, and sorted in memory in lenient mode).
"""
from __future__ import annotations

from dataclasses import replace

import polars as pl

from data_loaders.quality import (_SHOW_ROWS, QualityIssue, QualityReport, _error_mask, _group_columns, _issue,
                                  bad_value_message, broken_value_rules, gap_issue, missing_intervals,
                                  volume_issue)
from data_loaders.schemas import get_schema

#: Datasets whose key is the market plus the time, so a duplicate in time order is a zero step.
STREAMED_DATASETS = ("ohlcv", "funding")
#: Rules that concern the order of rows, not one row (lenient mode sorts and de-duplicates them).
ORDER_RULES = ("unsorted", "duplicate_ts")


class ChunkedCheck:
    """Run the quality rules over an input given as consecutive conformed chunks.

    Parameters
    ----------
    dataset : str
        Canonical dataset name.
    subject : str
        Named in the report (the file path).
    first_line : int, optional
        File line of the input's row 0 (the report then names file lines).
    """

    def __init__(self, dataset: str, *, subject: str, first_line: int | None = None) -> None:
        self.dataset = dataset
        self.subject = subject
        self.first_line = first_line
        self.rows = 0
        #: False once the input left what a bounded check can judge (see the module docstring).
        self.streamable = dataset in STREAMED_DATASETS
        self._groups = _group_columns(dataset)
        self._time = get_schema(dataset).time_column
        self._market: tuple | None = None
        self._carry: pl.DataFrame | None = None
        self._hits: dict[str, list] = {}  # rule -> [count, first rows]; rule order of the first mask
        self._broken: set[str] = set()
        self._gaps: pl.DataFrame | None = None
        self._last_rows = 0
        self._no_volume = 0

    @property
    def has_errors(self) -> bool:
        """True when an error rule was broken so far."""
        return any(count for count, _ in self._hits.values())

    def feed(self, chunk: pl.DataFrame) -> pl.Series | None:
        """Check the next chunk; return its rows that break a per-row error rule.

        Returns None (and turns :attr:`streamable` off) when the chunk holds another market,
        a missing time, or a time before the previous row's: nothing is recorded for it.
        """
        if not self.streamable or chunk.is_empty():
            return None if not self.streamable else pl.Series("bad", [], dtype=pl.Boolean)
        market = chunk.select(pl.col(self._groups).unique(maintain_order=True).implode()).row(0)
        if any(len(values) != 1 for values in market) or chunk[self._time].null_count():
            self.streamable = False
            return None
        market = tuple(values[0] for values in market)
        if self._market is not None and market != self._market:
            self.streamable = False
            return None
        carried = 0 if self._carry is None else self._carry.height
        frame = chunk if self._carry is None else pl.concat([self._carry, chunk], how="vertical")
        mask = _error_mask(self.dataset, frame).slice(carried)
        if mask["unsorted"].any():
            self.streamable = False
            return None
        self._market = market
        for code in mask.columns[1:]:
            hits = mask.filter(pl.col(code))["_row"]
            entry = self._hits.setdefault(code, [0, []])
            if len(hits):
                entry[0] += len(hits)
                if len(entry[1]) < _SHOW_ROWS:
                    entry[1].extend((hits.head(_SHOW_ROWS).cast(pl.Int64) - carried + self.rows).to_list())
                if code == "bad_value":
                    self._broken.update(broken_value_rules(self.dataset, chunk))
        # in time order the gap count needs no sort: the carried row bridges the boundary
        counts = missing_intervals(self.dataset, frame, ordered=True)
        if counts is not None:
            self._gaps = counts if self._gaps is None else (
                pl.concat([self._gaps, counts]).group_by(self._groups).agg(pl.col("missing").sum()))
        if self.dataset == "ohlcv":
            last = chunk.filter(pl.col("price_type") == "last")
            self._last_rows += last.height
            self._no_volume += last["volume"].null_count()
        self._carry = chunk.tail(1)
        self.rows += chunk.height
        row_rules = [c for c in mask.columns[1:] if c not in ORDER_RULES]
        return mask.select(pl.any_horizontal(row_rules) if row_rules else pl.lit(False)).to_series()

    def report(self) -> QualityReport:
        """The report :func:`data_loaders.quality.check` gives for the whole input."""
        issues: list[QualityIssue] = []
        for code, (count, rows) in self._hits.items():
            if count:
                issue = _issue(code, pl.Series(rows[:_SHOW_ROWS], dtype=pl.Int64), self.first_line, count)
                if code == "bad_value":
                    issue = replace(issue, message=bad_value_message(self.dataset, self._broken))
                issues.append(issue)
        issues.extend(gap_issue(self.dataset, None if self._gaps is None else self._gaps.sort(self._groups)))
        issues.extend(volume_issue(self._no_volume, self._last_rows))
        return QualityReport(self.subject, self.dataset, self.rows, tuple(issues),
                             "lines" if self.first_line is not None else "rows")
