"""Sites and users through the API (the administrator), and the report and exports as background jobs."""

from __future__ import annotations

import io
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).parent))
import world

from abscopal.store.tables import audit_log

API = "/api/v1"


def _finished(c: Any, location: str, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = c.get(location).json()
        if body["status"] in ("done", "failed") or time.monotonic() > deadline:
            return body
        time.sleep(0.2)


# --- sites


def test_everyone_signed_in_sees_the_site_list(client: world.Clients) -> None:
    sites = client.shared("patient").get(f"{API}/sites").json()
    assert [(s["code"], s["time_zone"]) for s in sites] == [("JNC", world.TIME_ZONE), ("QFS", world.TIME_ZONE)]


def test_the_administrator_adds_a_site_in_its_time_zone(fresh_client: world.Clients) -> None:
    admin = fresh_client.shared("admin")
    r = admin.post(
        f"{API}/sites", json={"code": "PUH", "name": "Peking University Hospital", "time_zone": "Asia/Urumqi"}
    )
    assert r.status_code == 201, r.text
    assert {"code": "PUH", "name": "Peking University Hospital", "country": "CN", "time_zone": "Asia/Urumqi"} in (
        admin.get(f"{API}/sites").json()
    )


def test_a_site_with_an_unknown_time_zone_is_refused(client: world.Clients) -> None:
    r = client.shared("admin").post(f"{API}/sites", json={"code": "ZZ", "name": "Z", "time_zone": "Mars/Olympus"})
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/time_zone"


def test_a_site_code_already_taken_is_a_conflict(client: world.Clients) -> None:
    r = client.shared("admin").post(f"{API}/sites", json={"code": world.QFS, "name": "again"})
    assert r.status_code == 409


# --- users


def _new_user(username: str = "newcrc", role: str = "coordinator") -> dict[str, Any]:
    return {"username": username, "full_name": "Test New", "password": world.PASSWORD,
            "memberships": [{"site": world.QFS, "role": role}]}  # fmt: skip


def test_a_user_the_administrator_creates_can_then_sign_in(fresh_client: world.Clients) -> None:
    r = fresh_client.shared("admin").post(f"{API}/users", json=_new_user())
    assert r.status_code == 201, r.text
    me = fresh_client.login("newcrc").get(f"{API}/me").json()
    assert me["memberships"] == [{"site": world.QFS, "role": "coordinator", "pi": False}]


def test_a_non_administrator_cannot_create_a_user(client: world.Clients) -> None:
    assert client.shared("datamanager").post(f"{API}/users", json=_new_user("sneaky")).status_code == 403


def test_the_user_list_shows_memberships_and_whether_disabled(client: world.Clients) -> None:
    users = {u["username"]: u for u in client.shared("admin").get(f"{API}/users").json()}
    assert set(world.USERS) <= set(users)
    assert users["pi"]["memberships"] == [{"site": world.QFS, "role": "investigator", "pi": True}]
    assert users["coordinator2"]["disabled"] is False


def test_a_weak_password_is_refused_with_the_policy(client: world.Clients) -> None:
    r = client.shared("admin").post(f"{API}/users", json={**_new_user("weak"), "password": "short"})
    assert r.status_code == 422 and "12 characters" in r.json()["detail"]


def test_a_disabled_account_cannot_sign_in_until_enabled_again(fresh_client: world.Clients) -> None:
    admin = fresh_client.shared("admin")
    assert admin.post(f"{API}/users/monitor/disable", json={"reason": "left the trial"}).json()["disabled"] is True
    with pytest.raises(AssertionError, match="401"):
        fresh_client.login("monitor")
    assert admin.post(f"{API}/users/monitor/enable", json={"reason": "back"}).json()["disabled"] is False
    fresh_client.login("monitor")


def test_a_password_reset_lets_the_user_sign_in_with_the_new_one(fresh_client: world.Clients) -> None:
    new = "a brand new long passphrase"
    r = fresh_client.shared("admin").post(f"{API}/users/monitor/password", json={"password": new, "reason": "forgot"})
    assert r.status_code == 200, r.text
    fresh_client.login("monitor", password=new)


def test_a_membership_change_gives_the_new_role(fresh_client: world.Clients) -> None:
    body = {"memberships": [{"site": world.JNC, "role": "monitor"}], "reason": "moved to JNC"}
    r = fresh_client.shared("admin").put(f"{API}/users/monitor/memberships", json=body)
    assert r.status_code == 200 and r.json()["memberships"] == [{"site": world.JNC, "role": "monitor", "pi": False}]
    assert fresh_client.login("monitor").get(f"{API}/patients/{world.QFS_PATIENT}").status_code == 404


# --- report and exports


@pytest.mark.slow
def test_the_report_job_runs_to_done_and_downloads_as_html(fresh_client: world.Clients) -> None:
    dm = fresh_client.shared("datamanager")
    r = dm.post(f"{API}/report", json={"format": "html"})
    assert r.status_code == 202 and r.json()["status"] in ("queued", "running")
    job = _finished(dm, r.headers["location"])
    assert job["status"] == "done" and job["progress"] == 100, job
    file = dm.get(job["download"])
    assert file.status_code == 200 and file.headers["content-type"].startswith("text/html")
    assert b"<html" in file.content[:2000].lower()


def test_the_statisticians_sdtm_export_is_a_zip_without_hospital_ids(fresh_client: world.Clients) -> None:
    stat = fresh_client.shared("statistician")
    r = stat.post(f"{API}/exports/sdtm", json={"formats": ["csv"], "domains": ["DM"]})
    assert r.status_code == 202, r.text
    job = _finished(stat, r.headers["location"])
    assert job["status"] == "done", job
    file = stat.get(job["download"])
    assert file.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(file.content)) as zf:
        dm = next(n for n in zf.namelist() if n.lower().endswith("dm.csv"))
        text = zf.read(dm).decode()
    assert world.QFS_PATIENT in text and "BRTHDTC" in text
    assert "HOSPITAL" not in text.upper()


def test_the_statistician_is_refused_the_odm_snapshot_with_its_identifiers(client: world.Clients) -> None:
    r = client.shared("statistician").post(f"{API}/exports/odm", json={})
    assert r.status_code == 422 and "direct identifiers" in r.json()["detail"]


def test_an_export_request_is_written_to_the_audit_trail(fresh_client: world.Clients, fresh_web_db: Any) -> None:
    dm = fresh_client.shared("datamanager")
    _finished(dm, dm.post(f"{API}/exports/odm", json={"strict": True}).headers["location"])
    with fresh_web_db.engine.connect() as conn:
        rows = (
            conn.execute(
                select(audit_log.c.new_value).where(audit_log.c.entity == "security", audit_log.c.field == "exported")
            )
            .scalars()
            .all()
        )
    assert any("ODM export requested" in str(v) for v in rows)


def test_another_users_job_is_not_found(client: world.Clients) -> None:
    dm = client.shared("datamanager")
    location = dm.post(f"{API}/exports/odm", json={}).headers["location"]
    stat = client.shared("statistician")
    assert stat.get(location).status_code == 404
    assert stat.get(f"{location}/download").status_code == 404
    assert _finished(dm, location)["status"] == "done"


def test_an_unknown_job_is_not_found(client: world.Clients) -> None:
    assert client.shared("datamanager").get(f"{API}/jobs/nope").status_code == 404
