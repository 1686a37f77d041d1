"""Analysis engines of the trial report (pure; no database, no drawing, no files).

``cutoff`` (the records and the data cut-off), ``populations`` (analysis sets, CONSORT, baseline), ``endpoints``
(response, time to event, QoL deterioration), ``figures`` (the plain data of every figure), ``options`` (the
derivation options used) and ``trial`` (:func:`analyse`: all of them at a cut-off). The report layer,
:mod:`abscopal.reports`, reads the store and lays the :class:`Analysis` out (docs/report.md).
"""

from typing import TYPE_CHECKING, Any

from abscopal.analysis.cutoff import TrialData, apply_cutoff

if TYPE_CHECKING:
    from abscopal.analysis.trial import Analysis, analyse


def __getattr__(name: str) -> Any:
    """``Analysis`` and ``analyse`` on first use (PEP 562): they import the statistics and SciPy (~2 s of CPU),
    which a reader of the cut-off alone (the SDTM export and its QS worker) does not need."""
    if name in ("Analysis", "analyse"):
        from abscopal.analysis import trial

        return getattr(trial, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Analysis", "TrialData", "analyse", "apply_cutoff"]
