"""Locust scenario for the web application (issue 11 speed target): ``bench/web_load.py`` runs it headless.

Every simulated user signs in once (``POST /api/v1/login``, step ``login``) as ``ABSCOPAL_LOAD_USER`` (default
``investigator``, password ``ABSCOPAL_LOAD_PASSWORD``), then repeats, with a think time of 0.5-1.5 s:

- ``dashboard``: ``GET /``;
- ``patient list``: ``GET /patients`` (the HTML page), or ``GET /api/v1/patients`` when the page is not there
  yet (404 at start-up: the step is then named ``patient list (API fallback)``);
- ``patient page``: ``GET /patients/{id}`` of a random patient, or ``GET /api/v1/patients/{id}`` (fallback);
- (a user whose sign-in failed signs in again instead of its next step; pages are fetched without following
  redirects, so a redirect to ``/login`` is a failure);
- ``lesions``: ``GET /api/v1/patients/{id}/lesions`` then ``lesion edit``: ``PUT .../lesions/{record_id}`` with
  ``If-Match`` = the record's ETag and ``{"reason": ..., "data": <its data minus subject_id>}``.

Users are locust's ``FastHttpUser`` (geventhttpclient): the load generator shares the machine's two cores with the
server, and it spends several times less CPU per request than ``HttpUser`` (python-requests), as locust's
documentation says; ``ABSCOPAL_LOAD_CLIENT=requests`` keeps ``HttpUser`` for comparison.

The patients to aim at (subject ids with at least one lesion) are read from the file named by
``ABSCOPAL_LOAD_SUBJECTS`` (one per line; web_load.py writes it). A 409 (someone else's edit of the same lesion in
between) is counted as a failure, like any status other than the expected one.
"""

from __future__ import annotations

import os
import random
from typing import Any

from locust import HttpUser, between, events, task
from locust.contrib.fasthttp import FastHttpUser

USERNAME = os.environ.get("ABSCOPAL_LOAD_USER", "investigator")
PASSWORD = os.environ.get("ABSCOPAL_LOAD_PASSWORD", "correct horse battery staple")
SUBJECTS_FILE = os.environ.get("ABSCOPAL_LOAD_SUBJECTS", "")
#: ``fast`` (FastHttpUser, the default) or ``requests`` (HttpUser).
CLIENT = os.environ.get("ABSCOPAL_LOAD_CLIENT", "fast")
BaseUser: Any = HttpUser if CLIENT == "requests" else FastHttpUser
SUBJECTS: list[str] = []
#: Whether the HTML pages exist (decided once, by the first user, at start-up).
PAGES: dict[str, bool] = {}
#: With ``ABSCOPAL_LOAD_RESET_AFTER=N``, the statistics restart once N users have signed in: the steady state,
#: without the sign-in storm (50 Argon2id verifications queue for seconds behind each other at start).
RESET_AFTER = int(os.environ.get("ABSCOPAL_LOAD_RESET_AFTER", "0"))
SIGNED_IN = [0]


@events.init.add_listener
def _load_subjects(environment: Any, **_: Any) -> None:
    if SUBJECTS_FILE:
        with open(SUBJECTS_FILE, encoding="utf-8") as fh:
            SUBJECTS.extend(line.strip() for line in fh if line.strip())
    if not SUBJECTS:
        raise SystemExit("no subjects to aim at: set ABSCOPAL_LOAD_SUBJECTS to a file of subject ids")


class Investigator(BaseUser):  # type: ignore[misc]
    wait_time = between(0.5, 1.5)

    signed_in = False

    def on_start(self) -> None:
        self.headers = {"Accept": "text/html,application/json"}  # sent with every request (both clients)
        self._sign_in()

    def _ready(self) -> bool:
        """Signed in (a user whose sign-in failed tries again instead of the step: a failed step, not a 401)."""
        if not self.signed_in:
            self._sign_in()
        return self.signed_in

    def _sign_in(self) -> None:
        with self.client.post(
            "/api/v1/login", json={"username": USERNAME, "password": PASSWORD}, name="login", catch_response=True,
            headers=self.headers,
        ) as response:  # fmt: skip
            if response.status_code != 200:
                response.failure(f"login {response.status_code}: {response.text[:200]}")
                return
            self.headers["X-CSRF-Token"] = response.json()["csrf_token"]
            self.signed_in = True
        SIGNED_IN[0] += 1
        if SIGNED_IN[0] == RESET_AFTER:
            self.environment.stats.reset_all()
            print(f"every one of the {RESET_AFTER} users has signed in: statistics restarted", flush=True)
        for page, probe in (("list", "/patients"), ("patient", f"/patients/{SUBJECTS[0]}")):
            if page not in PAGES:
                with self.client.get(
                    probe, name="probe (not counted)", catch_response=True, allow_redirects=False, headers=self.headers
                ) as r:
                    PAGES[page] = r.status_code == 200
                    r.success()

    @task(1)
    def dashboard(self) -> None:
        self._get("/", "dashboard")

    @task(2)
    def patient_list(self) -> None:
        if PAGES.get("list"):
            self._get("/patients", "patient list")
        else:
            self._get("/api/v1/patients", "patient list (API fallback)")

    @task(3)
    def patient_page(self) -> None:
        sid = random.choice(SUBJECTS)
        if PAGES.get("patient"):
            self._get(f"/patients/{sid}", "patient page")
        else:
            self._get(f"/api/v1/patients/{sid}", "patient page (API fallback)")

    @task(1)
    def edit_lesion(self) -> None:
        if not self._ready():
            return
        sid = random.choice(SUBJECTS)
        with self.client.get(
            f"/api/v1/patients/{sid}/lesions", name="lesions", catch_response=True, headers=self.headers
        ) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text[:200]}")
                return
            records = response.json()
            if not records:
                response.failure(f"{sid} has no lesion")
                return
        record = random.choice(records)
        data = {k: v for k, v in record["data"].items() if k != "subject_id"}
        body = {"reason": "load test: re-entered unchanged", "data": data}
        with self.client.put(
            f"/api/v1/patients/{sid}/lesions/{record['id']}", json=body,
            headers={**self.headers, "If-Match": record["etag"]}, name="lesion edit", catch_response=True,
        ) as response:  # fmt: skip
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text[:300]}")

    def _get(self, path: str, name: str) -> None:
        if not self._ready():
            return
        # A redirect (to /login: the session is gone) is a failure, not the login page's 200.
        with self.client.get(
            path, name=name, catch_response=True, allow_redirects=False, headers=self.headers
        ) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text[:200]}")
