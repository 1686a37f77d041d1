"""The web tests' world: its sites, one account per role, the shared password and the patients to aim at.

``tests/web/conftest.py`` builds this world in every web test database (fixture ``web_db``); test modules import
this file the way they import ``browser``::

    sys.path.insert(0, str(Path(__file__).parent))
    import world

Every account has the password :data:`PASSWORD`. :data:`USERS` maps each username to its role;
:data:`SITE_OF` to its site (``*``: every site). :data:`QFS_PATIENT` is an enrolled (on-treatment) patient of the
synthetic cohort at QFS; :data:`JNC_PATIENT` a screening patient at the second site, JNC.
"""

from __future__ import annotations

from typing import Any

from anyio.from_thread import start_blocking_portal

from abscopal.domain import Role

PASSWORD = "correct horse battery staple"
QFS = "QFS"
JNC = "JNC"
EVERY_SITE = "*"
SITES = {QFS: "Qianfoshan Hospital (test)", JNC: "Jinan Central Hospital (test)"}
TIME_ZONE = "Asia/Shanghai"

COHORT_SIZE = 6
COHORT_SEED = 7
#: An enrolled QFS patient of the synthetic cohort (seed :data:`COHORT_SEED`; status on_treatment).
QFS_PATIENT = "QFS-000003"
#: The JNC patient the world adds itself (status screening).
JNC_PATIENT = "JNC-000001"

#: username -> role, every role of web.md §1 (investigator and pi are both investigators; pi is the site's PI).
USERS: dict[str, Role] = {
    "coordinator": Role.COORDINATOR,
    "investigator": Role.INVESTIGATOR,
    "pi": Role.INVESTIGATOR,
    "dcp1": Role.DCP,
    "dcp2": Role.DCP,
    "radonc": Role.RADONC,
    "radiologist": Role.RADIOLOGIST,
    "datamanager": Role.DATA_MANAGER,
    "monitor": Role.MONITOR,
    "statistician": Role.STATISTICIAN,
    "admin": Role.ADMIN,
    "coordinator2": Role.COORDINATOR,
    "patient": Role.PATIENT,
}
#: username -> the site of its one membership.
SITE_OF: dict[str, str] = {
    **{name: QFS for name in USERS},
    "statistician": EVERY_SITE,
    "admin": EVERY_SITE,
    "coordinator2": JNC,
}
PIS = frozenset({"pi"})
#: The patient account's own subject id.
SUBJECT_OF = {"patient": QFS_PATIENT}
#: Users who see every site's patients (the others see only their own site's).
ALL_SITES = frozenset({"statistician", "admin"})


def full_name(username: str) -> str:
    return f"Test {username.capitalize()}"


class Clients:
    """Signed-in and anonymous ``TestClient``s over one app (the ``client`` fixtures of ``conftest.py``).

    ``login(username)`` signs in through ``POST /api/v1/login`` and returns a new client whose ``X-CSRF-Token``
    header is set (``csrf=False``: not set); its CSRF token is also ``client.csrf`` (an attribute added here).
    ``session(username)`` is the same without the sign-in (the session is written to the database: no Argon2
    cost); ``shared(username)`` caches one signed-in client per username. Clients never follow redirects.

    Every client runs its requests on one event loop in one thread (a blocking portal the clients share): a
    ``TestClient`` left to itself starts a thread and an event loop for each request (2-5 ms of a small
    request's 13-18 ms, measured). The app's lifespan is not run, as with a ``TestClient`` outside a ``with`` block.
    """

    def __init__(self, app: Any, *, raise_server_exceptions: bool = True) -> None:
        self.app = app
        self.raise_server_exceptions = raise_server_exceptions
        self._made: list[Any] = []
        self._shared: dict[str, Any] = {}
        self._portal_cm: Any = None
        self._portal: Any = None

    def anonymous(self) -> Any:
        from fastapi.testclient import TestClient

        c = TestClient(self.app, follow_redirects=False, raise_server_exceptions=self.raise_server_exceptions)
        if self._portal is None:
            self._portal_cm = start_blocking_portal("asyncio")
            self._portal = self._portal_cm.__enter__()
        c.portal = self._portal  # TestClient's own attribute: set, its requests use this portal (starlette)
        c.portal_owner = self._portal_cm  # the portal runs while a client needs it (a Clients may be dropped first)
        self._made.append(c)
        return c

    def login(self, username: str, *, csrf: bool = True, password: str = PASSWORD) -> Any:
        c = self.anonymous()
        response = c.post("/api/v1/login", json={"username": username, "password": password})
        if response.status_code != 200:
            raise AssertionError(f"login as {username} failed: {response.status_code} {response.text}")
        c.csrf = response.json()["csrf_token"]
        if csrf:
            c.headers["X-CSRF-Token"] = c.csrf
        return c

    def session(self, username: str, *, csrf: bool = True) -> Any:
        """A client with a new session written straight to the database (no password check: no Argon2 cost)."""
        from abscopal.web.context import SESSION_COOKIE
        from abscopal.web.sessions import start_session

        with self.app.state.web.write() as conn:
            token, stored = start_session(conn, username)
        c = self.anonymous()
        c.cookies.set(SESSION_COOKIE, token)
        c.csrf = stored.csrf_token
        if csrf:
            c.headers["X-CSRF-Token"] = c.csrf
        return c

    def shared(self, username: str) -> Any:
        if username not in self._shared:
            self._shared[username] = self.login(username)
        return self._shared[username]

    def close(self) -> None:
        for c in self._made:
            c.portal = None
            c.close()
        self._made.clear()
        self._shared.clear()
        if self._portal_cm is not None:
            self._portal_cm.__exit__(None, None, None)
            self._portal_cm = self._portal = None
