"""Reports and diagnosis: read training curves, diagnose a run, write a study's HTML report.

Example:
    >>> from reglab.report import StudyData, diagnose, load_study, read_history, write_report
"""

from reglab.report.aggregate import StudyData, ranking
from reglab.report.diagnose import Diagnosis, Thresholds, diagnose
from reglab.report.from_study import load_study
from reglab.report.histories import read_history
from reglab.report.html import render_html, write_report
from reglab.report.summary import markdown_summary
from reglab.report.verify import verify

__all__ = [
    "Diagnosis",
    "StudyData",
    "Thresholds",
    "diagnose",
    "load_study",
    "markdown_summary",
    "ranking",
    "read_history",
    "render_html",
    "verify",
    "write_report",
]
