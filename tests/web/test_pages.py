"""The shell pages (web.md §8): each renders for the roles allowed, refuses the others, and its forms go through
the services with the version they were based on (web.md §3). Every client here signs in through the login form.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).parent))
import world

from abscopal.store.tables import ENTITIES

HIDDEN = re.compile(r'<input type="hidden" name="(\w+)" value="([^"]*)"')


def form_login(clients: world.Clients, username: str) -> Any:
    """A client signed in through the login page (its CSRF cookie and hidden field), as a browser does."""
    c = clients.anonymous()
    page = c.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    response = c.post(
        "/login", data={"csrf_token": token.group(1), "username": username, "password": world.PASSWORD, "next": "/"}
    )
    assert response.status_code == 303, response.text
    home = c.get("/")
    meta = re.search(r'<meta name="csrf-token" content="([^"]+)">', home.text)
    assert meta is not None
    c.csrf = meta.group(1)
    return c


_clients: dict[tuple[int, str], Any] = {}


def user(clients: world.Clients, username: str) -> Any:
    key = (id(clients), username)
    if key not in _clients:
        _clients[key] = form_login(clients, username)
    return _clients[key]


def hidden(html: str) -> dict[str, str]:
    return dict(HIDDEN.findall(html))


def first_id(db: Any, entity: str, subject_id: str = world.QFS_PATIENT) -> str:
    table = ENTITIES[entity].table
    with db.engine.connect() as conn:
        found = conn.execute(
            select(table.c.id)
            .where(table.c.subject_id == subject_id, table.c.removed_reason.is_(None))
            .order_by(table.c.id)
            .limit(1)
        ).scalar_one()
    return str(found)


def assert_no_inline(html: str) -> None:
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "an inline <script> block"
    assert not re.search(r"\sstyle\s*=", html), "a style= attribute"
    assert not re.search(r"\son[a-z]+\s*=", html), "an inline event handler"
    assert "<style" not in html, "a <style> block"


# --- pages render for the roles allowed


@pytest.mark.parametrize(
    ("username", "path"),
    [
        ("coordinator", "/"),
        ("admin", "/"),
        ("patient", "/"),
        ("coordinator", "/patients"),
        ("statistician", "/patients"),
        ("coordinator", f"/patients/{world.QFS_PATIENT}"),
        ("statistician", f"/patients/{world.QFS_PATIENT}"),
        ("coordinator", "/queries"),
        ("datamanager", "/queries"),
        ("monitor", "/audit"),
        ("admin", "/admin/users"),
        ("admin", "/admin/users/new"),
        ("admin", "/admin/users/coordinator"),
        ("admin", "/admin/sites"),
        ("coordinator", "/profile"),
        ("admin", "/profile"),
    ],
)
def test_each_page_renders_for_a_role_allowed_to_open_it(client: world.Clients, username: str, path: str) -> None:
    response = user(client, username).get(path)
    assert response.status_code == 200, response.text[:500]
    assert "<main" in response.text
    assert_no_inline(response.text)
