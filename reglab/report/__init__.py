"""Reports and diagnosis: read training curves, diagnose a run, write a study's HTML report.

Example:
    >>> from reglab.report import StudyData, diagnose, read_history, write_report
"""

from reglab.report.aggregate import StudyData, ranking
from reglab.report.diagnose import Diagnosis, Thresholds, diagnose
from reglab.report.histories import read_history
from reglab.report.html import render_html, write_report
from reglab.report.summary import markdown_summary

__all__ = [
    "Diagnosis",
    "StudyData",
    "Thresholds",
    "diagnose",
    "markdown_summary",
    "ranking",
    "read_history",
    "render_html",
    "write_report",
]
