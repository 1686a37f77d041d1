"""``abscopal serve``: run the web application (pages and the JSON API) over the trial database with uvicorn."""

from __future__ import annotations

import contextlib
import os
from typing import Annotated

import typer

from abscopal.cli._common import console, user_errors
from abscopal.errors import StoreError
from abscopal.settings import Settings
from abscopal.store.database import make_engine, redact, require_schema

#: anyio's default: the requests a worker runs at once in its thread pool.
DEFAULT_THREADS = 40


def check_ready(url: str) -> None:
    """Refuse, with the command that fixes it, a database without the current schema or without any account."""
    from abscopal.web.accounts import count_accounts

    engine = make_engine(url, read_only=True)
    try:
        require_schema(engine)
        if count_accounts(engine) == 0:
            raise StoreError(
                f"{redact(url)} has no user accounts, so nobody could sign in; add the first administrator with "
                "`abscopal user add admin --full-name 'Your Name' --role admin --site '*'`"
            )
    finally:
        engine.dispose()


def register(app: typer.Typer) -> None:
    @app.command("serve")
    @user_errors
    def serve(
        database_url: Annotated[
            str | None,
            typer.Option("--database-url", envvar="ABSCOPAL_DATABASE_URL", help="Database URL (default: SQLite)."),
        ] = None,
        host: Annotated[str, typer.Option("--host", help="Address to listen on (0.0.0.0: every interface).")] = (
            "127.0.0.1"
        ),
        port: Annotated[int, typer.Option("--port", help="Port to listen on.", min=1, max=65535)] = 8000,
        workers: Annotated[
            int, typer.Option("--workers", help="Worker processes (more than 1 for PostgreSQL under load).", min=1)
        ] = 1,
        threads: Annotated[
            int,
            typer.Option(
                "--threads",
                min=1,
                help="Requests each worker handles at once (their threads); more wait in line, first come first "
                "served (default: 40, anyio's).",
            ),
        ] = DEFAULT_THREADS,
        proxy_headers: Annotated[
            bool,
            typer.Option(
                "--proxy-headers/--no-proxy-headers",
                help="Trust X-Forwarded-Proto/-For from the addresses of --forwarded-allow-ips (a reverse proxy).",
            ),
        ] = True,
        forwarded_allow_ips: Annotated[
            str,
            typer.Option(
                "--forwarded-allow-ips", help="Comma-separated proxy addresses whose X-Forwarded-* headers count."
            ),
        ] = "127.0.0.1",
        secure_cookies: Annotated[
            bool | None,
            typer.Option(
                "--secure-cookies/--no-secure-cookies",
                help="Mark cookies Secure (default: when the request came over HTTPS, directly or via the proxy).",
            ),
        ] = None,
    ) -> None:
        """Serve the web application: the pages at / and the JSON API under /api/v1 (OpenAPI at /api/v1/docs).

        The database needs its schema (`abscopal db upgrade`) and one account at least. Examples:

            abscopal db upgrade && abscopal user add admin --full-name 'Qian Hong' --role admin --site '*'

            abscopal serve --port 8080

        Behind an HTTPS reverse proxy (nginx, Caddy) on the same machine, the proxy sets X-Forwarded-Proto and
        the cookies become Secure by themselves; for a proxy elsewhere name it:

            abscopal serve --host 0.0.0.0 --forwarded-allow-ips 10.0.0.5 --secure-cookies --workers 4

        Ctrl-C stops the server.
        """
        import uvicorn

        from abscopal.cli.demo import bind_socket, server_url
        from abscopal.web import serve_factory

        url = database_url or Settings().resolved_database_url()
        check_ready(url)
        bind_socket(host, port).close()  # a taken port is one sentence, not a uvicorn log line
        if workers > 1 and url.startswith("sqlite"):
            console.print("Note: SQLite has one writer at a time; with several workers writes wait for each other.")
        console.print(
            f"Abscopal is serving {redact(url)} at {server_url(host, port)} — Ctrl-C stops it.",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        with contextlib.suppress(KeyboardInterrupt):  # uvicorn stops on SIGINT, then raises it again
            if workers == 1:
                from abscopal.web.app import create_app

                uvicorn.run(
                    create_app(url, secure_cookies=secure_cookies, threads=threads, serving=True), host=host, port=port,
                    proxy_headers=proxy_headers, forwarded_allow_ips=forwarded_allow_ips,
                )  # fmt: skip
            else:
                os.environ[serve_factory.URL_VARIABLE] = url
                os.environ[serve_factory.SECURE_VARIABLE] = "" if secure_cookies is None else str(int(secure_cookies))
                os.environ[serve_factory.THREADS_VARIABLE] = str(threads)
                uvicorn.run(
                    "abscopal.web.serve_factory:app_from_env", factory=True, workers=workers, host=host, port=port,
                    proxy_headers=proxy_headers, forwarded_allow_ips=forwarded_allow_ips,
                )  # fmt: skip
        console.print("Stopped.", markup=False, highlight=False)
