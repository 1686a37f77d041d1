"""The application for uvicorn's factory mode (``abscopal serve --workers N``): each worker builds its own app.

``uvicorn.run("abscopal.web.serve_factory:app_from_env", factory=True, workers=n)`` starts ``n`` processes, and
each calls :func:`app_from_env`, which reads what ``abscopal serve`` put in the environment: the database URL
(:data:`URL_VARIABLE`), whether cookies are ``Secure`` (:data:`SECURE_VARIABLE`: ``1``, ``0``, or unset for
"when the request came over HTTPS") and the requests a worker runs at once (:data:`THREADS_VARIABLE`).
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from abscopal.errors import StoreError

URL_VARIABLE = "ABSCOPAL_SERVE_DATABASE_URL"
SECURE_VARIABLE = "ABSCOPAL_SERVE_SECURE_COOKIES"
THREADS_VARIABLE = "ABSCOPAL_SERVE_THREADS"


def secure_cookies_from_env() -> bool | None:
    value = os.environ.get(SECURE_VARIABLE, "").strip()
    return None if value == "" else value == "1"


def app_from_env() -> FastAPI:
    """The web application over the database named by :data:`URL_VARIABLE`."""
    from abscopal.web.app import create_app

    url = os.environ.get(URL_VARIABLE, "")
    if not url:
        raise StoreError(f"{URL_VARIABLE} is not set; start the server with `abscopal serve`")
    threads = os.environ.get(THREADS_VARIABLE, "").strip()
    return create_app(
        url, secure_cookies=secure_cookies_from_env(), threads=int(threads) if threads else None, serving=True
    )
