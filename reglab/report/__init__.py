"""Reports and diagnosis: read training curves, diagnose a run, write a study's HTML report.

Example:
    >>> from reglab.report import diagnose, read_history
"""

from reglab.report.diagnose import Diagnosis, Thresholds, diagnose
from reglab.report.histories import read_history

__all__ = ["Diagnosis", "Thresholds", "diagnose", "read_history"]
