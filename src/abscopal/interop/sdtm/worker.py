"""QS (the largest dataset) built, checked and written by a second process while the export builds the others.

``python -m abscopal.interop.sdtm.worker`` reads one pickled :class:`Job` on stdin, reads from the database only
what QS needs (patients, fractions, cycles, answers), builds QS, checks it, writes it into the export's staging
folder and pickles a :class:`Done` (or the error raised) into ``job.result``. The parent reads the rest of the
trial without the answers, so the two processes hold about what one held (issue 13: ≤ 2 GB for both), and the
parent compares the audit head both read (a write between the two reads: the export is done again in one process).
"""

from __future__ import annotations

import datetime as dt
import gc
import pickle
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from abscopal.interop.sdtm.source import AuditHead
from abscopal.interop.sdtm.spec import Dataset
from abscopal.interop.sdtm.writers import WrittenFile
from abscopal.protocol.model import ProtocolFile

#: what QS reads of the store (:func:`abscopal.interop.sdtm.oncology_common.subjects` and the answers)
QS_ENTITIES = frozenset({"patients", "fractions", "immunotherapy_cycles", "questionnaire_answers"})


@dataclass(frozen=True)
class Job:
    url: str  # the database, read-only
    protocols: ProtocolFile
    cutoff: dt.date
    created: dt.datetime
    options: Mapping[str, str]
    formats: Sequence[str]
    transliterate: bool
    version: str
    staging: Path
    digest: bool  # define.xml is written: return QS's define digest
    result: Path


@dataclass(frozen=True)
class Done:
    head: AuditHead  # the audit head this process read
    files: list[WrittenFile]
    substitutions: list[str]
    digests: list[Dataset]  # QS's define digest (define.xml is written)


def run(job: Job) -> Done:
    from abscopal.interop.sdtm.define_digest import define_digest
    from abscopal.interop.sdtm.qs import build_qs
    from abscopal.interop.sdtm.source import audit_state, load_source
    from abscopal.interop.sdtm.writers import check_datasets, write_dataset
    from abscopal.store.database import make_engine

    engine = make_engine(job.url, read_only=True)
    try:
        with engine.connect() as conn:
            source = load_source(conn, job.protocols, job.cutoff, job.created, job.options, only=QS_ENTITIES)
            head = audit_state(conn)
    finally:
        engine.dispose()
    protocol = job.protocols.current
    studyid = protocol.interop.studyid or protocol.trial.id
    built = build_qs(source, release=True)
    del source  # the answers: QS's rows hold what they need of them
    gc.collect()
    checked, report = check_datasets(built, transliterate=job.transliterate)
    del built
    files = [
        write_dataset(
            ds,
            job.staging,
            fmt,
            created=job.created,
            studyid=studyid,
            version=job.version,
            last_modified=head.last_at,
        )
        for ds in checked
        for fmt in job.formats
    ]
    digests = [define_digest(ds) for ds in checked] if job.digest else []
    return Done(head, list(files), list(report.substitutions), list(digests))


def main() -> None:
    # this process builds millions of tuples and records, none in a reference cycle, and then ends: the cyclic
    # collector's passes over them would cost a fifth of its time (the one collection after the answers are
    # released is asked for explicitly)
    gc.disable()
    job: Job = pickle.load(sys.stdin.buffer)
    try:
        outcome: object = run(job)
    except Exception as exc:  # handed to the parent, which raises it where the one-process export would
        outcome = exc
    with job.result.open("wb") as fh:
        pickle.dump(outcome, fh, protocol=pickle.HIGHEST_PROTOCOL)


if __name__ == "__main__":  # run as the module itself, so the result pickles as worker.Done, not __main__.Done
    from abscopal.interop.sdtm import worker

    worker.main()
