"""Errors as a sentence: RFC 9457 ``application/problem+json`` for the API, an error page for people (web.md §7).

Every deliberate error (:mod:`abscopal.errors`) maps to one status and keeps its sentence; a validation error
names its field as a JSON pointer. Anything else is a bug: it is logged with a correlation id, and the response
carries only that id, never a traceback.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from abscopal.errors import (
    AbscopalError,
    ConflictError,
    DuplicateRecord,
    InputFileError,
    MissingParent,
    NotFound,
    PermissionDenied,
    RecordLocked,
    StoreError,
    ValidationError,
)
from abscopal.web.accounts import LoginRefused
from abscopal.web.context import CsrfRefused, NotSignedIn
from abscopal.web.i18n import N_

log = logging.getLogger("abscopal.web")
PROBLEM = "application/problem+json"
_TITLES = {
    400: N_("Bad request"),
    401: N_("Sign in first"),
    403: N_("Not allowed"),
    404: N_("Not found"),
    405: N_("Method not allowed"),
    409: N_("Changed by someone else"),
    412: N_("Version required"),
    413: N_("Too large"),
    415: N_("Unsupported media type"),
    422: N_("Invalid input"),
    423: N_("Locked"),
    428: N_("Version required"),
    500: N_("Internal error"),
    503: N_("Database unavailable"),
}


class ProblemDetail(BaseModel):
    """RFC 9457 problem details, as every API error answers (``application/problem+json``)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str = Field(description="What happened, in a sentence")
    instance: str
    correlation_id: str = Field(description="Quote it to the team; a 5xx is logged under it")
    errors: list[dict[str, Any]] | None = Field(None, description="Each bad field as a JSON pointer, with why")
    reasons: list[str] | None = Field(None, description="Every rule a refused step broke")
    changes: list[dict[str, Any]] | None = Field(None, description="409: who changed which field, when, to what")
    current_version: int | None = None


_DESCRIBED = {
    401: "Not signed in, or the session or token has ended",
    403: "The role may not do this, or the CSRF token is missing",
    404: "No such resource at your sites",
    409: "Changed by someone else since the version sent (If-Match), or a duplicate",
    422: "A field is invalid, or a rule of the protocol refuses the step",
    423: "The record is locked",
    428: "A write without If-Match",
}
#: The error answers every API route may give, documented once for all of them (web.md §7).
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ProblemDetail, "description": text, "content": {PROBLEM: {}}} for code, text in _DESCRIBED.items()
}


class PreconditionRequired(AbscopalError):
    """A write without ``If-Match`` (or the form's version): 428."""


def correlation_id(request: Request) -> str:
    cid = getattr(request.state, "correlation_id", None)
    if cid is None:
        cid = request.state.correlation_id = uuid.uuid4().hex[:16]
    return str(cid)


def status_of(exc: AbscopalError) -> int:
    if isinstance(exc, NotSignedIn | LoginRefused):
        return 401
    if isinstance(exc, PermissionDenied | CsrfRefused):
        return 403
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, ConflictError | DuplicateRecord):
        return 409
    if isinstance(exc, RecordLocked):
        return 423
    if isinstance(exc, MissingParent):
        return 422
    if isinstance(exc, PreconditionRequired):
        return 428
    if isinstance(exc, ValidationError | InputFileError):
        return 422
    if isinstance(exc, StoreError):
        return 503
    return 400


def _pointer(field: str) -> str:
    return "/" + "/".join(p for p in field.replace(".", "/").split("/") if p) if field else ""


def problem_body(request: Request, status: int, detail: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "about:blank",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": str(request.url.path),
        "correlation_id": correlation_id(request),
        **extra,
    }


def wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/")


def _extra(exc: AbscopalError) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if isinstance(exc, ValidationError):
        extra["errors"] = [{"pointer": _pointer(exc.field), "detail": exc.reason}]
        reasons = getattr(exc, "reasons", None)
        if reasons:
            extra["reasons"] = list(reasons)
    if isinstance(exc, InputFileError):
        extra["errors"] = [{"line": p.line, "pointer": _pointer(p.field), "detail": p.reason} for p in exc.problems]
    if isinstance(exc, ConflictError):
        extra["current_version"] = exc.current
        extra["changes"] = [
            {"username": c.username, "at": c.at, "field": c.field, "value": c.new_value} for c in exc.changes
        ]
    return extra


def respond(request: Request, status: int, detail: str, **extra: Any) -> Response:
    body = problem_body(request, status, detail, **extra)
    if wants_html(request):
        from abscopal.web.templating import render_error

        return render_error(request, body)
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def install(app: FastAPI) -> None:
    @app.exception_handler(AbscopalError)
    async def _abscopal(request: Request, exc: AbscopalError) -> Response:
        status = status_of(exc)
        if status == 401 and wants_html(request) and not isinstance(exc, LoginRefused):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            if request.headers.get("hx-request"):
                return Response(status_code=204, headers={"HX-Redirect": f"/login?next={target}"})
            return RedirectResponse(f"/login?next={target}", status_code=303)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        detail = str(exc)
        if wants_html(request):  # a page says it in its reader's language; the API in English
            from abscopal.web.i18n import error_text
            from abscopal.web.templating import language_of

            detail = error_text(language_of(request), exc)
        response = respond(request, status, detail, **_extra(exc))
        if headers:
            response.headers.update(headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = []
        for e in exc.errors():
            loc = [str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path", "header", "form")]
            errors.append({"pointer": "/" + "/".join(loc), "detail": str(e.get("msg", "invalid"))})
        first = errors[0] if errors else {"pointer": "", "detail": "invalid"}
        where = first["pointer"].strip("/").replace("/", ".") or "the request"
        return respond(request, 422, f"{where}: {first['detail']}", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail else _TITLES.get(exc.status_code, "Error")
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"There is no page or resource at {request.url.path}"
        if exc.status_code == 405:
            detail = f"{request.method} is not allowed at {request.url.path}"
        return respond(request, exc.status_code, detail)

    # No handler for Exception: a bug reaches app.py's middleware, which logs it and answers with
    # :func:`server_error` (a handler here would be Starlette's outermost layer, outside the security headers).


def server_error(request: Request) -> Response:
    """The 500 answer: a sentence and the correlation id (logged with the traceback), never the traceback."""
    cid = correlation_id(request)
    return respond(
        request, 500, f"Something went wrong on our side; nothing you entered is lost. Quote {cid} to the team."
    )
