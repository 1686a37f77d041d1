"""The use cases the web, the API, the CLI and the importers call (cosmicpython's service layer).

Each use case is one function: ``use_case(uow, actor, <plain data>, ...)``. It checks the actor's permission
(:mod:`abscopal.services.common`, web.md §2), calls the engines for the clinical checks, writes only through
the unit of work's repositories and **commits once at the end**: a use case is the whole transaction. The caller
opens the unit of work (it carries the user and reason the audit trail records) and closes it::

    with UnitOfWork(engine, user="dr.li", reason="enrolment visit") as uow:
        enrolment.enrol(uow, actor, "S001", version=3, on=dt.date(2024, 3, 1))

A refused step raises before anything is committed (PermissionDenied, ValidationError naming the field,
:class:`~abscopal.services.common.Refused` with every reason, NotFound); ConflictError, RecordLocked and
DuplicateRecord from the store pass through unchanged. Leaving the ``with`` block then rolls everything back.
Bulk imports (``abscopal demo``, :mod:`abscopal.store.cohort_loader`) use ``uow.add_all`` instead: an import of
already-checked data, not a use case.
"""
