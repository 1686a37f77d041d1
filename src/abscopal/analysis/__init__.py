"""Analysis engines of the trial report (pure; no database, no drawing, no files).

``cutoff`` (the records and the data cut-off), ``populations`` (analysis sets, CONSORT, baseline), ``endpoints``
(response, time to event, QoL deterioration), ``figures`` (the plain data of every figure), ``options`` (the
derivation options used) and ``trial`` (:func:`analyse`: all of them at a cut-off). The report layer,
:mod:`abscopal.reports`, reads the store and lays the :class:`Analysis` out (docs/report.md).
"""

from abscopal.analysis.cutoff import TrialData, apply_cutoff
from abscopal.analysis.trial import Analysis, analyse

__all__ = ["Analysis", "TrialData", "analyse", "apply_cutoff"]
