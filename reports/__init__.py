"""margincall's HTML reports: one run (``write_report``) or several (``write_comparison``).

Reports are single offline HTML files (plotly.js inlined once), built from a list of
sections; see ``docs/report.md``.
"""
from __future__ import annotations

from reports.compare import write_comparison
from reports.html import Section
from reports.rundir import RunData, RunDirError, load_run
from reports.single import write_report

__all__ = ["RunData", "RunDirError", "Section", "load_run", "write_comparison", "write_report"]
