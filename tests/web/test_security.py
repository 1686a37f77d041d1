"""Security rules of web.md §6-§7, one rule per test, on both backends."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import Depends
from sqlalchemy import func, insert, select, update

sys.path.insert(0, str(Path(__file__).parent))
import world

from abscopal.store.tables import accounts, audit_log, login_failures, web_sessions
from abscopal.web.accounts import password_problems, set_disabled
from abscopal.web.context import PUBLIC, SESSION_COOKIE, requires
from abscopal.web.sessions import Timeouts, digest

PROBLEM = "application/problem+json"


def _events(db: Any, username: str, event: str) -> int:
    query = select(func.count()).where(
        audit_log.c.entity == "security", audit_log.c.entity_key == username, audit_log.c.field == event
    )
    with db.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def _session_row(db: Any, c: Any) -> Any:
    token = c.cookies.get(SESSION_COOKIE)
    with db.engine.connect() as conn:
        return conn.execute(select(web_sessions).where(web_sessions.c.token_hash == digest(token))).one()


def _new_token(c: Any, **extra: Any) -> dict[str, Any]:
    response = c.post("/api/v1/me/tokens", json={"name": "script", **extra})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _bearer(app: Any, secret: str) -> Any:
    c = world.Clients(app).anonymous()
    c.headers["Authorization"] = f"Bearer {secret}"
    return c


# --- CSRF


def test_an_unsafe_request_of_a_session_without_the_csrf_token_is_refused(client: world.Clients) -> None:
    response = client.login("coordinator", csrf=False).post("/api/v1/me/tokens", json={"name": "x"})
    assert response.status_code == 403
    assert response.headers["content-type"].startswith(PROBLEM)
    assert "CSRF" in response.json()["detail"]


def test_an_unsafe_request_with_a_wrong_csrf_token_is_refused(client: world.Clients) -> None:
    c = client.login("coordinator", csrf=False)
    response = c.post("/api/v1/me/tokens", json={"name": "x"}, headers={"X-CSRF-Token": "not-the-token"})
    assert response.status_code == 403
    assert response.headers["content-type"].startswith(PROBLEM)


def test_an_unsafe_request_with_the_sessions_csrf_token_is_accepted(client: world.Clients) -> None:
    c = client.login("coordinator", csrf=False)
    response = c.post("/api/v1/me/tokens", json={"name": "x"}, headers={"X-CSRF-Token": c.csrf})
    assert response.status_code == 201, response.text


def test_a_bearer_token_needs_no_csrf_token(app: Any, client: world.Clients) -> None:
    secret = _new_token(client.shared("coordinator"))["token"]
    response = _bearer(app, secret).post("/api/v1/me/tokens", json={"name": "from a script"})
    assert response.status_code == 201, response.text


def test_the_login_form_without_its_csrf_cookie_is_refused(client: world.Clients) -> None:
    c = client.anonymous()
    response = c.post("/login", data={"username": "coordinator", "password": world.PASSWORD, "csrf_token": "x"})
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert SESSION_COOKIE not in response.cookies


def test_the_login_form_with_its_csrf_cookie_signs_in(client: world.Clients) -> None:
    c = client.anonymous()
    token = c.get("/login").cookies["abscopal_login_csrf"]
    response = c.post(
        "/login", data={"username": "monitor", "password": world.PASSWORD, "csrf_token": token, "next": "/"}
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/"
    assert c.get("/api/v1/me").json()["username"] == "monitor"


# --- lock-out


def test_five_failed_logins_lock_the_account_even_for_the_right_password(
    fresh_client: world.Clients, fresh_web_db: Any
) -> None:
    c = fresh_client.anonymous()
    for _ in range(5):
        assert c.post("/api/v1/login", json={"username": "monitor", "password": "wrong password!"}).status_code == 401
    response = c.post("/api/v1/login", json={"username": "monitor", "password": world.PASSWORD})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith(PROBLEM)
    assert "locked" in response.json()["detail"]
    assert _events(fresh_web_db, "monitor", "login_failed") == 5
    assert _events(fresh_web_db, "monitor", "locked_out") == 1
    assert _events(fresh_web_db, "monitor", "login") == 0


def test_failed_logins_older_than_fifteen_minutes_do_not_count(fresh_client: world.Clients, fresh_web_db: Any) -> None:
    old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=16)
    with fresh_web_db.engine.begin() as conn:
        for i in range(4):
            conn.execute(
                insert(login_failures).values(username="monitor", at=old - dt.timedelta(minutes=i), kind="login")
            )
    c = fresh_client.anonymous()
    assert c.post("/api/v1/login", json={"username": "monitor", "password": "wrong password!"}).status_code == 401
    response = c.post("/api/v1/login", json={"username": "monitor", "password": world.PASSWORD})
    assert response.status_code == 200, response.text


# --- sessions


def test_a_session_idle_too_long_is_ended(make_app: Any, fresh_web_db: Any) -> None:
    app = make_app(fresh_web_db, timeouts=Timeouts(idle=dt.timedelta(minutes=30)))
    c = world.Clients(app).login("coordinator")
    with fresh_web_db.engine.begin() as conn:
        conn.execute(
            update(web_sessions)
            .where(web_sessions.c.token_hash == digest(c.cookies.get(SESSION_COOKIE)))
            .values(last_seen_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=31))
        )
    response = c.get("/api/v1/me")
    assert response.status_code == 401
    assert "session has ended" in response.json()["detail"]
    assert _session_row(fresh_web_db, c).ended_why == "idle"


def test_a_session_older_than_its_absolute_lifetime_is_ended(make_app: Any, fresh_web_db: Any) -> None:
    app = make_app(fresh_web_db)
    c = world.Clients(app).login("coordinator")
    with fresh_web_db.engine.begin() as conn:
        conn.execute(
            update(web_sessions)
            .where(web_sessions.c.token_hash == digest(c.cookies.get(SESSION_COOKIE)))
            .values(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=13))
        )
    response = c.get("/api/v1/me")
    assert response.status_code == 401
    assert _session_row(fresh_web_db, c).ended_why == "expired"
    assert c.get("/").status_code == 303  # pages: back to the login page


def test_a_short_idle_timeout_ends_the_session(make_app: Any, fresh_web_db: Any) -> None:
    app = make_app(fresh_web_db, timeouts=Timeouts(idle=dt.timedelta(seconds=0.2), touch_every=dt.timedelta(0)))
    c = world.Clients(app).login("coordinator")
    time.sleep(0.4)
    assert c.get("/api/v1/me").status_code == 401
    assert _session_row(fresh_web_db, c).ended_why == "idle"


def test_logout_ends_the_session_and_its_cookie_is_refused_afterwards(client: world.Clients, web_db: Any) -> None:
    c = client.login("radiologist")
    cookie = c.cookies.get(SESSION_COOKIE)
    assert c.post("/api/v1/logout").status_code == 204
    replay = client.anonymous()
    replay.cookies.set(SESSION_COOKIE, cookie)
    assert replay.get("/api/v1/me").status_code == 401
    with web_db.engine.connect() as conn:
        row = conn.execute(select(web_sessions).where(web_sessions.c.token_hash == digest(cookie))).one()
    assert row.ended_why == "logout"


def test_login_logout_and_failures_are_audited(client: world.Clients, web_db: Any) -> None:
    before = {e: _events(web_db, "radonc", e) for e in ("login", "logout", "login_failed")}
    client.anonymous().post("/api/v1/login", json={"username": "radonc", "password": "wrong password!"})
    c = client.login("radonc")
    c.post("/api/v1/logout")
    after = {e: _events(web_db, "radonc", e) for e in ("login", "logout", "login_failed")}
    assert after == {e: n + 1 for e, n in before.items()}
    assert _events(web_db, "nobody-here", "login_failed") == 0
    client.anonymous().post("/api/v1/login", json={"username": "nobody-here", "password": "whatever it is"})
    assert _events(web_db, "nobody-here", "login_failed") == 1


# --- tokens


def test_a_revoked_token_is_refused(app: Any, client: world.Clients) -> None:
    owner = client.shared("datamanager")
    token = _new_token(owner)
    c = _bearer(app, token["token"])
    assert c.get("/api/v1/me").json()["username"] == "datamanager"
    assert owner.delete(f"/api/v1/me/tokens/{token['id']}").status_code == 200
    response = c.get("/api/v1/me")
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


def test_an_expired_token_is_refused(app: Any, client: world.Clients, web_db: Any) -> None:
    from abscopal.store.tables import api_tokens

    token = _new_token(client.shared("datamanager"))
    with web_db.engine.begin() as conn:
        conn.execute(
            update(api_tokens)
            .where(api_tokens.c.id == token["id"])
            .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
    response = _bearer(app, token["token"]).get("/api/v1/me")
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_a_token_expiring_in_the_past_cannot_be_created(client: world.Clients) -> None:
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).isoformat()
    response = client.shared("datamanager").post("/api/v1/me/tokens", json={"name": "old", "expires_at": past})
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "/expires_at"


def test_a_disabled_accounts_token_and_session_are_refused(
    fresh_app: Any, fresh_client: world.Clients, fresh_web_db: Any
) -> None:
    c = fresh_client.login("investigator")
    secret = _new_token(c)["token"]
    with fresh_web_db.engine.begin() as conn:
        set_disabled(conn, by="admin", username="investigator", disabled=True, reason="left the trial")
    assert c.get("/api/v1/me").status_code == 401
    assert _bearer(fresh_app, secret).get("/api/v1/me").status_code == 401
    assert _session_row(fresh_web_db, c).ended_why == "disabled"
    response = fresh_client.anonymous().post(
        "/api/v1/login", json={"username": "investigator", "password": world.PASSWORD}
    )
    assert response.status_code == 401
    assert "disabled" in response.json()["detail"]


# --- headers and cookies


@pytest.mark.parametrize("path", ["/login", "/api/v1/me", "/api/v1/no-such-thing"])
def test_security_headers_are_on_pages_and_api(client: world.Clients, path: str) -> None:
    response = client.anonymous().get(path)
    csp = response.headers["content-security-policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] in ("same-origin", "strict-origin-when-cross-origin", "no-referrer")
    assert response.headers["x-frame-options"] == "DENY"


def _set_cookie(response: Any) -> str:
    cookies = [v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith(SESSION_COOKIE)]
    assert len(cookies) == 1, cookies
    return cookies[0]


def test_the_session_cookie_is_httponly_and_samesite_lax(client: world.Clients) -> None:
    response = client.anonymous().post("/api/v1/login", json={"username": "monitor", "password": world.PASSWORD})
    cookie = _set_cookie(response).lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert "secure" not in cookie.replace("samesite", "")  # plain HTTP in the test client


def test_the_session_cookie_is_secure_when_configured(make_app: Any, web_db: Any) -> None:
    app = make_app(web_db, secure_cookies=True)
    response = (
        world.Clients(app).anonymous().post("/api/v1/login", json={"username": "monitor", "password": world.PASSWORD})
    )
    assert "; secure" in _set_cookie(response).lower()


@pytest.mark.parametrize("target", ["//evil.example", "https://evil.example/", "/\\evil.example", "evil.example"])
def test_the_login_page_never_redirects_off_the_site(client: world.Clients, target: str) -> None:
    c = client.anonymous()
    token = c.get("/login").cookies["abscopal_login_csrf"]
    response = c.post(
        "/login", data={"username": "monitor", "password": world.PASSWORD, "csrf_token": token, "next": target}
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    signed_in = client.shared("monitor").get("/login", params={"next": target})
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/"


# --- passwords


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("short pass", "at least 12"),
        ("monitor-is-my-password", "username"),
        ("aaaaaaaaaaaaaaaa", "repeated"),
        ("password1234", "well-known"),
    ],
)
def test_the_password_policy_refuses_weak_passwords(password: str, why: str) -> None:
    problems = password_problems(password, "monitor")
    assert any(why in p for p in problems), problems


def test_the_password_policy_accepts_a_passphrase() -> None:
    assert password_problems(world.PASSWORD, "monitor") == []


def test_passwords_are_argon2id_hashes_never_in_the_audit_trail(web_db: Any) -> None:
    with web_db.engine.connect() as conn:
        hashes = list(conn.execute(select(accounts.c.password_hash)).scalars())
        trail = [
            " ".join(str(v) for v in row)
            for row in conn.execute(select(audit_log.c.old_value, audit_log.c.new_value, audit_log.c.reason))
        ]
    assert len(hashes) == len(world.USERS)
    assert all(h.startswith("$argon2id$") for h in hashes)
    text = "\n".join(trail)
    assert "$argon2" not in text and world.PASSWORD not in text
    assert not any(h in text for h in hashes)


def test_a_server_process_hashes_passwords_with_rfc_9106s_second_profile() -> None:
    # the suite hashes with a cheap Argon2id (tests/conftest.py); a fresh process must not: m=64 MiB, t=3, p=4
    code = "from abscopal.web.accounts import hash_password; print(hash_password('correct horse battery'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("$argon2id$v=19$m=65536,t=3,p=4$")


# --- errors


def test_an_unknown_api_path_is_a_problem_with_a_sentence(client: world.Clients) -> None:
    response = client.shared("monitor").get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == 404 and "/api/v1/no-such-thing" in body["detail"]


def test_a_server_error_carries_a_correlation_id_and_no_traceback(make_app: Any, web_db: Any) -> None:
    app = make_app(web_db)

    def boom(_: Annotated[Any, Depends(requires(PUBLIC))]) -> None:
        raise RuntimeError("secret internals: /etc/passwd")

    app.add_api_route("/api/v1/_boom", boom, methods=["GET"])
    response = world.Clients(app, raise_server_exceptions=False).anonymous().get("/api/v1/_boom")
    assert response.status_code == 500
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    cid = body["correlation_id"]
    assert cid and cid in body["detail"]
    assert "Traceback" not in response.text and "secret internals" not in response.text


def test_a_server_error_response_carries_the_request_id_and_security_headers(make_app: Any, web_db: Any) -> None:
    app = make_app(web_db)

    def boom(_: Annotated[Any, Depends(requires(PUBLIC))]) -> None:
        raise RuntimeError("boom")

    app.add_api_route("/api/v1/_boom", boom, methods=["GET"])
    response = world.Clients(app, raise_server_exceptions=False).anonymous().get("/api/v1/_boom")
    assert response.status_code == 500
    assert response.headers.get("x-request-id") == response.json()["correlation_id"]
    assert response.headers.get("x-content-type-options") == "nosniff"
    assert response.headers.get("x-frame-options") == "DENY"
    assert "content-security-policy" in response.headers
