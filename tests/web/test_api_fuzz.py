"""Fuzz: schemathesis against ``/api/v1/openapi.json`` — every operation, authenticated as each role (web.md §9).

The app (``create_app`` over the test world of ``conftest.py``) is called in-process (ASGI, no server) with a
personal API token per role (``Authorization: Bearer``). For every operation of the OpenAPI document and every
role fuzzed, Hypothesis generates positive and negative cases; every response must pass:

- ``not_a_server_error`` (no 5xx; an exception escaping the app counts as one, its traceback is reported);
- ``response_schema_conformance`` and ``content_type_conformance`` (a documented status's body and media type);
- ``status_code_conformance`` is *relaxed*: the routes document their success status (and FastAPI's 422), not
  the 401/403/404/409/412/423/428 problem responses every route may return (web.md §7), so only statuses outside
  :data:`PROBLEM_STATUSES` are checked against the document.

Path parameters hit real rows: about half of the cases have ``{subject_id}`` replaced by a patient of the world
and ``{record_id}`` by one of that patient's records (listed through the API at the start), and a write to a real
record sends ``If-Match`` with its current ETag, so the handlers run past the 404 and the 428.

Bounded and reproducible: ``derandomize=True`` (the same cases on every run), ``deadline=None``, no shrinking, no
example database; :data:`EXAMPLES` per operation and role (``ABSCOPAL_FUZZ_EXAMPLES``), the roles of
:data:`ROLES` (``ABSCOPAL_FUZZ_ROLES``: a comma-separated list, or ``all``). ``bench/web_fuzz.py`` (``make fuzz``)
runs this module with 200 examples and every role. On SQLite and on PostgreSQL
(the world's fixtures run on both); PostgreSQL as the data manager only (:data:`PG_ROLES`) unless
``ABSCOPAL_FUZZ_ROLES`` names the roles.
One module-scoped database for every role: the cases' writes accumulate (and the admin runs last).

Operations with a known, reported bug are excluded in :data:`KNOWN_BUGS` (operation id -> the bug) until fixed.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("schemathesis")

import hypothesis
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.python import asgi

sys.path.insert(0, str(Path(__file__).parent))
import world

API = "/api/v1"
#: The roles fuzzed by `make test` (every role: ABSCOPAL_FUZZ_ROLES=all, as bench/web_fuzz.py does).
DEFAULT_ROLES = ("datamanager", "investigator")
#: Every account of the world, the administrator last (its writes can change the other accounts).
ALL_ROLES = tuple(sorted(world.USERS, key=lambda u: u == "admin"))
ROLES = (
    ALL_ROLES
    if os.environ.get("ABSCOPAL_FUZZ_ROLES", "") == "all"
    else tuple(r for r in os.environ.get("ABSCOPAL_FUZZ_ROLES", ",".join(DEFAULT_ROLES)).split(",") if r)
)
#: The roles fuzzed on PostgreSQL by `make test` (the backend adds its own errors, not its own routes: one role
#: with the most kinds of writes keeps the suite's time; ABSCOPAL_FUZZ_ROLES set fuzzes its roles on both).
PG_ROLES = ROLES if os.environ.get("ABSCOPAL_FUZZ_ROLES") else ("datamanager",)
EXAMPLES = int(os.environ.get("ABSCOPAL_FUZZ_EXAMPLES", "6"))  # make test's bound; make fuzz: 200
#: Problem statuses any route may answer (web.md §7) though the OpenAPI document does not list them per route.
PROBLEM_STATUSES = frozenset({400, 401, 403, 404, 405, 409, 412, 413, 415, 422, 423, 428})
#: operation id -> the reported bug that excludes it (empty: every operation is fuzzed).
KNOWN_BUGS: dict[str, str] = {}
#: Every API route documents its problem answers (401/403/404/409/422/423/428, ``problems.PROBLEM_RESPONSES``), so
#: a 422 is checked against the document like any other answer (True would check it only against _problem_shape).
RELAX_422_DOCUMENT = False


@dataclass
class Findings:
    """What the fuzz found: failures per (role, operation, kind), the first case of each, and what ran."""

    failures: dict[tuple[str, str, str], str] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, set[int]] = field(default_factory=dict)

    def add(self, role: str, label: str, kind: str, text: str) -> None:
        self.failures.setdefault((role, label, kind), text)


class _Tracebacks(logging.Handler):
    """The app logs each unhandled error with its correlation id (problems.py): keep the last few."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        del self.records[:-20]

    def cause(self) -> str:
        if not self.records:
            return ""
        record = self.records[-1]
        if record.exc_info is None:
            return record.getMessage()
        import traceback

        return "".join(traceback.format_exception(*record.exc_info)[-6:])


@pytest.fixture(scope="module")
def tokens(web_db: Any) -> dict[str, str]:
    from abscopal.web.sessions import create_token

    out = {}
    with web_db.engine.begin() as conn:
        for username in world.USERS:
            secret, _ = create_token(conn, username, "schemathesis fuzz")
            out[username] = secret
    return out


@pytest.fixture(scope="module")
def api_schema(app: Any) -> Any:
    return schemathesis.openapi.from_asgi(f"{API}/openapi.json", app)


@pytest.fixture(scope="module")
def asgi_client(app: Any) -> Iterator[Any]:
    with asgi.get_client(app) as client:
        yield client


@pytest.fixture(scope="module")
def real_ids(web_db: Any, api_schema: Any, asgi_client: Any, tokens: dict[str, str]) -> dict[str, list[str]]:
    """Path parameter name (or ``<slug>/record_id``) -> real values of the world, for the cases that aim at them."""
    from sqlalchemy import select

    from abscopal.store.tables import ENTITIES

    patients = ENTITIES["patients"].table
    with web_db.engine.connect() as conn:
        subjects = list(conn.execute(select(patients.c.subject_id).order_by(patients.c.subject_id)).scalars())
    ids: dict[str, list[str]] = {
        "subject_id": [world.QFS_PATIENT, world.JNC_PATIENT, *subjects],
        "username": list(world.USERS),
        "site_code": [world.QFS, world.JNC],
        "code": [world.QFS, world.JNC],
    }
    headers = {"Authorization": f"Bearer {tokens['datamanager']}"}
    for result in api_schema.get_all_operations():
        op = result.ok()
        m = re.fullmatch(rf"{API}/patients/\{{subject_id\}}/([a-z0-9-]+)/\{{record_id\}}", op.path)
        if m is None or op.method.upper() != "GET":
            continue
        slug = m.group(1)
        found: list[str] = []
        for sid in (world.QFS_PATIENT, world.JNC_PATIENT):
            r = asgi_client.get(f"http://{asgi.HOST}{API}/patients/{sid}/{slug}", headers=headers)
            if r.status_code == 200 and isinstance(r.json(), list):
                found += [f"{sid}|{item['id']}" for item in r.json() if "id" in item]
        ids[f"{slug}/record_id"] = found
    return ids


def _slug(path: str) -> str | None:
    m = re.search(r"/([a-z0-9-]+)/\{record_id\}", path)
    return m.group(1) if m else None


def _aim(case: Any, pick: Any, real_ids: dict[str, list[str]]) -> Any:
    """Replace the generated path parameters of ``case`` by real ones (``pick`` chooses among them)."""
    params = case.path_parameters or {}
    slug = _slug(case.operation.path)
    pairs = real_ids.get(f"{slug}/record_id", []) if slug else []
    if "record_id" in params and pairs:
        sid, rid = pick(pairs).split("|")
        params["subject_id"], params["record_id"] = sid, rid
    for name in params:
        if name in real_ids and not (name == "subject_id" and "record_id" in params and pairs):
            params[name] = pick(real_ids[name])
    case.path_parameters = params
    return case


def _strategy(op: Any, real_ids: dict[str, list[str]]) -> Any:
    base = st.one_of(op.as_strategy(GenerationMode.POSITIVE), op.as_strategy(GenerationMode.NEGATIVE))
    if not op.path_parameters:
        return base
    aimed = st.tuples(base, st.randoms(use_true_random=False)).map(lambda pair: _aim(pair[0], pair[1].choice, real_ids))
    return st.one_of(base, aimed)


def _etag(client: Any, case: Any, headers: dict[str, str]) -> str | None:
    """The current ETag of what a write to a real record is based on (the record, or the patient for a step)."""
    path = case.formatted_path
    if case.method.upper() == "POST":
        path = path.rsplit("/", 1)[0]
    r = client.get(f"http://{asgi.HOST}{path}", headers=headers)
    return r.headers.get("etag") if r.status_code == 200 else None


def _relaxed_status(ctx: Any, response: Any, case: Any) -> Any:
    if response.status_code in PROBLEM_STATUSES:
        return None
    return status_code_conformance(ctx, response, case)


def _documented(check: Any) -> Any:
    def run(ctx: Any, response: Any, case: Any) -> Any:
        if RELAX_422_DOCUMENT and response.status_code == 422:
            return None
        return check(ctx, response, case)

    run.__name__ = check.__name__
    return run


PROBLEM_FIELDS = {"type": str, "title": str, "status": int, "detail": str, "instance": str, "correlation_id": str}


def _problem_shape(response: Any) -> str | None:
    """Why an API error response is not an RFC 9457 problem of web.md §7 (None: it is one)."""
    if response.status_code < 400:
        return None
    media = response.headers.get("content-type", [""])
    media = media[0] if isinstance(media, list) else media
    if response.status_code in (401, 403, 404, 405, 409, 412, 422, 423, 428) or response.status_code >= 500:
        if not str(media).startswith("application/problem+json"):
            return f"content type {media!r}, not application/problem+json"
        try:
            body = response.json()
        except ValueError:
            return "the body is not JSON"
        if not isinstance(body, dict):
            return "the body is not a JSON object"
        for name, kind in PROBLEM_FIELDS.items():
            if not isinstance(body.get(name), kind):
                return f"the problem has no {kind.__name__} {name!r}"
        if body["status"] != response.status_code:
            return f"the problem's status {body['status']} is not the response's {response.status_code}"
        if response.status_code == 422 and not isinstance(body.get("errors"), list):
            return "a 422 problem has no 'errors' list (field pointers)"
        if "Traceback" in response.text:
            return "the body carries a traceback"
    return None


def _fuzz(
    op: Any, role: str, token: str, client: Any, real_ids: dict[str, list[str]], findings: Findings, logs: _Tracebacks
) -> None:
    label = f"{op.method.upper()} {op.path}"
    headers = {"Authorization": f"Bearer {token}"}
    checks = [
        not_a_server_error,
        _documented(response_schema_conformance),
        _documented(content_type_conformance),
        _relaxed_status,
    ]

    @hypothesis.settings(
        max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck), verbosity=hypothesis.Verbosity.quiet,
    )  # fmt: skip
    @hypothesis.given(case=_strategy(op, real_ids))
    def run(case: Any) -> None:
        extra = dict(headers)
        aimed = case.path_parameters and case.path_parameters.get("subject_id") in real_ids["subject_id"]
        if aimed and case.method.upper() in ("PUT", "PATCH", "DELETE", "POST") and "if-match" not in case.headers:
            etag = _etag(client, case, headers)
            if etag:
                extra["If-Match"] = etag
        findings.calls[label] = findings.calls.get(label, 0) + 1
        logs.records.clear()
        try:
            response = case.call(session=client, headers=extra)
        except Exception as exc:  # the app raised through the transport: a 5xx
            findings.add(role, label, "exception", f"{type(exc).__name__}: {exc}\n{case.as_curl_command()}")
            return
        findings.statuses.setdefault(label, set()).add(response.status_code)
        try:
            case.validate_response(response, checks=checks, headers=extra)
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis's FailureGroup is a BaseExceptionGroup
            kind = "5xx" if response.status_code >= 500 else type(exc).__name__
            body = response.text[:500]
            cause = logs.cause() if response.status_code >= 500 else ""
            findings.add(role, label, kind, f"{exc}\nresponse {response.status_code}: {body}\n{cause}")
            return
        why = _problem_shape(response)
        if why is not None:
            findings.add(role, label, "problem+json", f"{why}\nresponse {response.status_code}: {response.text[:500]}")

    run()


@pytest.fixture(scope="module")
def findings() -> Findings:
    return Findings()


@pytest.mark.parametrize("role", ROLES)
def test_every_operation_as(
    role: str,
    api_schema: Any,
    asgi_client: Any,
    tokens: dict[str, str],
    real_ids: dict[str, list[str]],
    findings: Findings,
    web_db: Any,
) -> None:
    """As ``role``: no operation answers 5xx or a response its OpenAPI document does not describe."""
    if web_db.backend == "postgresql" and role not in PG_ROLES:
        pytest.skip(f"PostgreSQL is fuzzed as {', '.join(PG_ROLES)}; ABSCOPAL_FUZZ_ROLES={role} fuzzes it there")
    logs = _Tracebacks()
    logger = logging.getLogger("abscopal.web")
    logger.addHandler(logs)
    started = time.perf_counter()
    ran = []
    try:
        for result in api_schema.get_all_operations():
            op = result.ok()
            op_id = op.definition.raw.get("operationId", "")
            if op_id in KNOWN_BUGS:
                continue
            _fuzz(op, role, tokens[role], asgi_client, real_ids, findings, logs)
            ran.append(op_id)
    finally:
        logger.removeHandler(logs)
    mine = {k: v for k, v in findings.failures.items() if k[0] == role}
    report = "\n\n".join(f"[{k[2]}] {k[1]} as {k[0]}:\n{v}" for k, v in sorted(mine.items()))
    reached = sorted(label for label, codes in findings.statuses.items() if any(200 <= c < 300 for c in codes))
    print(
        f"\n{role}: {len(ran)} operations x {EXAMPLES} examples in {time.perf_counter() - started:.1f} s; "
        f"{len(reached)} operations answered 2xx so far (any role)"
    )
    if os.environ.get("ABSCOPAL_FUZZ_VERBOSE"):
        for label, codes in sorted(findings.statuses.items()):
            print(f"  {label}: {sorted(codes)}")
    assert not mine, f"{len(mine)} failing operation(s) as {role}:\n\n{report}"
    assert ran, "the OpenAPI document lists no operation"
