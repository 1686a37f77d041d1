"""The web app served for real (uvicorn on 127.0.0.1, a free port, a background thread), for the browser tests.

::

    with live_server.serve(app) as base_url:   # "http://127.0.0.1:PORT"
        page.goto(base_url + "/login")

uvicorn installs no signal handlers outside the main thread, so the test process keeps its own; leaving the
``with`` block asks the server to exit (``should_exit``) and waits for its thread.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

HOST = "127.0.0.1"


def free_port() -> int:
    """A port nobody listens on now (the kernel's choice; released before uvicorn binds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(app: Any, *, start_timeout: float = 20.0) -> Iterator[str]:
    """Serve ``app`` until the block ends; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host=HOST, port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"the live server on {HOST}:{port} stopped before it started (see the log above)")
        if time.monotonic() > deadline:
            server.should_exit = True
            thread.join(5)
            raise RuntimeError(f"the live server on {HOST}:{port} did not start within {start_timeout} s")
        time.sleep(0.02)
    try:
        yield f"http://{HOST}:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
