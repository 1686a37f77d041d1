"""The session cookie (web.md §6): ``HttpOnly``, ``SameSite=Lax``, ``Secure`` when served over HTTPS."""

from __future__ import annotations

from fastapi import Request, Response

from abscopal.web.context import SESSION_COOKIE, state_of


def secure(request: Request) -> bool:
    configured = state_of(request).secure_cookies
    if configured is not None:
        return configured
    return request.url.scheme == "https"  # behind a proxy: uvicorn --proxy-headers sets the scheme


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    absolute = int(state_of(request).timeouts.absolute.total_seconds())
    response.set_cookie(
        SESSION_COOKIE, token, max_age=absolute, httponly=True, samesite="lax", secure=secure(request), path="/"
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
