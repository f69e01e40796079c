"""Reports of a results folder: tables (:mod:`.tables`), figures (:mod:`.plots`), one fixed style
per optimizer (:mod:`.style`) and ``REPORT.md`` (:func:`write_report`)."""

from suite.report.report import write_report

__all__ = ["write_report"]
