"""What the user sees: plan tables, live progress and (later) figures."""

from __future__ import annotations

from opplan.report.progress import RichPlanProgress
from opplan.report.tables import caveat_lines, path_table, transitions_table

__all__ = ["RichPlanProgress", "caveat_lines", "path_table", "transitions_table"]
