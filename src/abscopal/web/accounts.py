"""Accounts, one role per site, passwords, lock-out and the security events of the audit trail (web.md §1, §6).

Passwords are hashed with Argon2id (argon2-cffi's defaults, RFC 9106's second recommended profile); the policy
is NIST SP 800-63B's: at least 12 characters, not the username, not one character repeated, not a well-known
password. Five failed logins (or three failed signature passwords, web.md §5) within 15 minutes lock the
account until 15 minutes after the first of them. Account changes and security events (logins, failures,
lock-outs, refusals, signatures, exports) are appended to the audit trail as ``accounts`` and ``security``
records, so that the trail names every login beside every change; a password hash is never written there.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from argon2 import Parameters, PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import RFC_9106_LOW_MEMORY
from sqlalchemy import Connection, Engine, bindparam, delete, func, insert, select, update

from abscopal import domain as d
from abscopal.errors import AbscopalError, NotFound, ValidationError
from abscopal.services.common import Actor
from abscopal.store.audit import AuditWriter, Change
from abscopal.store.audit_key import load_key
from abscopal.store.tables import ENTITIES, accounts, login_failures, memberships, web_sessions

sites = ENTITIES["sites"].table
patients = ENTITIES["patients"].table

EVERY_SITE = "*"
LANGUAGES = ("en", "zh_Hans")
LOCKOUT_WINDOW = dt.timedelta(minutes=15)
LOGIN_FAILURES_TO_LOCK = 5
SIGNATURE_FAILURES_TO_LOCK = 3
MIN_PASSWORD_LENGTH = 12
_COMMON = frozenset(
    {"password1234", "123456789012", "qwertyuiop12", "passwordpassword", "abscopal1234", "letmein12345",
     "iloveyou1234", "administrator", "welcome12345", "trustno1trustno1"}
)  # fmt: skip
#: Argon2id, time_cost=3, memory 64 MiB, parallelism 4: RFC 9106 §4's second recommended choice (argon2-cffi's
#: default). Verifying a stored hash always uses the parameters written in that hash.
PASSWORD_PROFILE: Parameters = RFC_9106_LOW_MEMORY
_HASHER = PasswordHasher.from_parameters(PASSWORD_PROFILE)


class LoginRefused(AbscopalError):
    """Wrong username or password, a disabled or locked account: one sentence that leaks nothing more."""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


# --- passwords


def password_problems(password: str, username: str = "") -> list[str]:
    """Why ``password`` is refused (NIST SP 800-63B §5.1.1.2), empty when it is acceptable."""
    problems = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if username and username.lower() in password.lower():
        problems.append("a password cannot contain the username")
    if password and len(set(password)) == 1:
        problems.append("a password cannot be one character repeated")
    if password.lower() in _COMMON:
        problems.append("that password is on the list of well-known passwords")
    return problems


def check_password(password: str, username: str = "", field: str = "password") -> None:
    problems = password_problems(password, username)
    if problems:
        raise ValidationError(field, "; ".join(problems))


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def password_matches(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# --- accounts


@dataclass(frozen=True)
class Membership:
    """A role at one site (``*``: every site, for the statistician and the administrator)."""

    site_code: str
    role: d.Role
    pi: bool = False


@dataclass(frozen=True)
class Account:
    username: str
    full_name: str
    disabled: bool
    language: str
    subject_id: str | None
    memberships: tuple[Membership, ...]
    version: int
    site_codes: tuple[str, ...] = ()  # every site of the trial (to expand ``*``)

    @property
    def roles(self) -> frozenset[d.Role]:
        return frozenset(m.role for m in self.memberships)

    @property
    def role(self) -> d.Role:
        """The account's main role: its first membership's (accounts of the demo and most sites have one)."""
        return self.memberships[0].role if self.memberships else d.Role.PATIENT

    def sites_as(self, role: d.Role) -> frozenset[str]:
        codes: set[str] = set()
        for m in self.memberships:
            if m.role is role:
                codes.update(self.site_codes if m.site_code == EVERY_SITE else (m.site_code,))
        return frozenset(codes)

    def actor(self, site_code: str | None = None) -> Actor:
        """The actor the services see: the role at ``site_code`` (when given and held), else the main role."""
        role = self.role
        if site_code is not None:
            for m in self.memberships:
                if m.site_code in (site_code, EVERY_SITE):
                    role = m.role
                    break
        pi = any(m.pi for m in self.memberships if m.role is role)
        return Actor(self.username, self.full_name, role, self.sites_as(role), pi=pi, subject_id=self.subject_id)


#: An account's columns and one membership's, labelled (a row per membership, or one with None when it has none):
#: the shape :func:`account_from_rows` reads, shared with the session look-up that joins them (web/sessions.py).
ACCOUNT_COLUMNS = (
    accounts.c.username.label("account_username"), accounts.c.full_name, accounts.c.disabled, accounts.c.language,
    accounts.c.subject_id.label("account_subject_id"), accounts.c.version.label("account_version"),
    memberships.c.site_code.label("membership_site"), memberships.c.role.label("membership_role"),
    memberships.c.pi.label("membership_pi"),
)  # fmt: skip

#: The statement of :func:`load_account`, built once (every request resolves its account): SQLAlchemy then
#: neither rebuilds it nor computes its cache key nor adapts its result's columns on each call.
_ACCOUNT = (
    select(*ACCOUNT_COLUMNS)
    .select_from(accounts.outerjoin(memberships, memberships.c.username == accounts.c.username))
    .where(accounts.c.username == bindparam("username"))
    .order_by(memberships.c.site_code)
)
_SITE_CODES = select(sites.c.code).where(sites.c.removed_reason.is_(None))


def account_from_rows(rows: Sequence[Any], site_codes: tuple[str, ...]) -> Account | None:
    """The account in ``rows`` (:data:`ACCOUNT_COLUMNS`, a row per membership ordered by site), None without rows or
    when the rows' account is missing (an outer join's Nones)."""
    if not rows or rows[0].account_username is None:
        return None
    row = rows[0]
    return Account(
        row.account_username, row.full_name, bool(row.disabled), row.language, row.account_subject_id,
        tuple(
            Membership(r.membership_site, d.Role(r.membership_role), bool(r.membership_pi))
            for r in rows if r.membership_site is not None
        ),
        int(row.account_version), site_codes,
    )  # fmt: skip


def load_account(conn: Connection, username: str, site_codes: tuple[str, ...] | None = None) -> Account | None:
    """The account with its memberships; ``site_codes`` (every site of the trial, to expand ``*``) when known."""
    rows = conn.execute(_ACCOUNT, {"username": username}).all()  # one round trip: a row per membership, or one
    if not rows:
        return None
    codes = site_codes if site_codes is not None else tuple(conn.execute(_SITE_CODES).scalars())
    return account_from_rows(rows, codes)


def list_accounts(conn: Connection) -> list[Account]:
    names = conn.execute(select(accounts.c.username).order_by(accounts.c.username)).scalars().all()
    return [a for a in (load_account(conn, n) for n in names) if a is not None]


def _audit(conn: Connection, actor: str, reason: str, changes: Iterable[Change]) -> None:
    writer = AuditWriter(conn, actor, reason, load_key(conn.engine.url, create=False))
    writer.add(changes)
    writer.flush()


def security_event(conn: Connection, username: str, event: str, detail: str) -> None:
    """Append one security event (login, login_failed, locked_out, refused, signed, exported …) to the trail."""
    _audit(conn, username or "anonymous", detail, [Change("security", username or "anonymous", event, None, detail)])


def _check_username(username: str) -> str:
    name = username.strip()
    if not name or len(name) > 100 or not all(c.isalnum() or c in "._-" for c in name):
        raise ValidationError("username", "a username is 1-100 letters, digits, '.', '_' or '-'")
    return name


def _check_memberships(conn: Connection, ms: Sequence[Membership], subject_id: str | None) -> None:
    if not ms:
        raise ValidationError("memberships", "an account needs a role at one site at least")
    codes = set(conn.execute(select(sites.c.code).where(sites.c.removed_reason.is_(None))).scalars())
    seen: set[str] = set()
    for m in ms:
        if m.site_code in seen:
            raise ValidationError("memberships", f"one role per site: {m.site_code} is given twice")
        seen.add(m.site_code)
        if m.site_code != EVERY_SITE and m.site_code not in codes:
            raise ValidationError("site", f"there is no site {m.site_code!r} (add it with `abscopal site add`)")
        if m.site_code == EVERY_SITE and m.role not in (d.Role.STATISTICIAN, d.Role.ADMIN):
            raise ValidationError("site", "only the statistician and the administrator hold a role at every site")
        if m.pi and m.role is not d.Role.INVESTIGATOR:
            raise ValidationError("pi", "only an investigator can be a site's principal investigator")
        if m.role is d.Role.PATIENT and subject_id is None:
            raise ValidationError("subject_id", "a patient's account names the patient's subject id")
    if subject_id is not None:
        found = conn.execute(
            select(patients.c.site_code).where(patients.c.subject_id == subject_id, patients.c.removed_reason.is_(None))
        ).first()
        if found is None:
            raise ValidationError("subject_id", f"there is no patient {subject_id!r}")


def create_account(
    conn: Connection, *, by: str, username: str, full_name: str, password: str, memberships_: Sequence[Membership],
    language: str = "en", subject_id: str | None = None, check_policy: bool = True,
) -> Account:  # fmt: skip
    """Add an account (audited as ``accounts`` records written by ``by``); refuses a taken username."""
    name = _check_username(username)
    if not full_name.strip():
        raise ValidationError("full_name", "an account needs the person's full name (signatures show it)")
    if language not in LANGUAGES:
        raise ValidationError("language", f"the language is one of {', '.join(LANGUAGES)}")
    if check_policy:
        check_password(password, name)
    if conn.execute(select(accounts.c.username).where(accounts.c.username == name)).first() is not None:
        raise ValidationError("username", f"the username {name!r} is taken")
    _check_memberships(conn, memberships_, subject_id)
    now = utcnow()
    conn.execute(
        insert(accounts).values(
            username=name, full_name=full_name.strip(), password_hash=hash_password(password), disabled=False,
            language=language, subject_id=subject_id, created_at=now, password_changed_at=now, version=1,
        )
    )  # fmt: skip
    for m in memberships_:
        conn.execute(insert(memberships).values(username=name, site_code=m.site_code, role=m.role.value, pi=m.pi))
    roles = ", ".join(f"{m.role.value}@{m.site_code}{' (PI)' if m.pi else ''}" for m in memberships_)
    _audit(conn, by, f"account {name} created", [
        Change("accounts", name, "*", None, f"{full_name.strip()}; {roles}; language {language}", version=1)
    ])  # fmt: skip
    account = load_account(conn, name)
    assert account is not None
    return account


def require_account(conn: Connection, username: str) -> Account:
    account = load_account(conn, username)
    if account is None:
        raise NotFound(f"No account {username!r}")
    return account


def set_password(conn: Connection, *, by: str, username: str, password: str, reason: str) -> None:
    account = require_account(conn, username)
    check_password(password, username, "new_password")
    conn.execute(
        update(accounts)
        .where(accounts.c.username == username)
        .values(password_hash=hash_password(password), password_changed_at=utcnow(), version=account.version + 1)
    )
    conn.execute(delete(login_failures).where(login_failures.c.username == username))
    _audit(conn, by, reason, [Change("accounts", username, "password", None, "changed", version=account.version + 1)])


def set_disabled(conn: Connection, *, by: str, username: str, disabled: bool, reason: str) -> None:
    account = require_account(conn, username)
    if account.disabled == disabled:
        return
    conn.execute(
        update(accounts).where(accounts.c.username == username).values(disabled=disabled, version=account.version + 1)
    )
    if disabled:
        end_sessions(conn, username, "disabled")
    _audit(conn, by, reason, [
        Change("accounts", username, "disabled", str(account.disabled), str(disabled), version=account.version + 1)
    ])  # fmt: skip


def set_language(conn: Connection, *, username: str, language: str) -> None:
    if language not in LANGUAGES:
        raise ValidationError("language", f"the language is one of {', '.join(LANGUAGES)}")
    account = require_account(conn, username)
    if account.language == language:
        return
    conn.execute(
        update(accounts).where(accounts.c.username == username).values(language=language, version=account.version + 1)
    )
    _audit(conn, username, "language changed", [
        Change("accounts", username, "language", account.language, language, version=account.version + 1)
    ])  # fmt: skip


def set_memberships(
    conn: Connection, *, by: str, username: str, memberships_: Sequence[Membership], reason: str
) -> None:
    account = require_account(conn, username)
    _check_memberships(conn, memberships_, account.subject_id)
    conn.execute(delete(memberships).where(memberships.c.username == username))
    for m in memberships_:
        conn.execute(insert(memberships).values(username=username, site_code=m.site_code, role=m.role.value, pi=m.pi))
    conn.execute(update(accounts).where(accounts.c.username == username).values(version=account.version + 1))
    old = ", ".join(f"{m.role.value}@{m.site_code}" for m in account.memberships)
    new = ", ".join(f"{m.role.value}@{m.site_code}{' (PI)' if m.pi else ''}" for m in memberships_)
    _audit(conn, by, reason, [Change("accounts", username, "roles", old, new, version=account.version + 1)])


# --- lock-out


def failures_since(conn: Connection, username: str, since: dt.datetime, kind: str | None = None) -> list[dt.datetime]:
    query = select(login_failures.c.at).where(login_failures.c.username == username, login_failures.c.at >= since)
    if kind is not None:
        query = query.where(login_failures.c.kind == kind)
    return sorted(_utc(t) for t in conn.execute(query).scalars())


def locked_until(conn: Connection, username: str, now: dt.datetime) -> dt.datetime | None:
    """When the lock-out ends, if the account is locked out now (5 login or 3 signature failures in 15 min)."""
    since = now - LOCKOUT_WINDOW
    for kind, limit in (("login", LOGIN_FAILURES_TO_LOCK), ("signature", SIGNATURE_FAILURES_TO_LOCK)):
        times = failures_since(conn, username, since, kind)
        if len(times) >= limit:
            return times[-limit] + LOCKOUT_WINDOW
    return None


def record_failure(conn: Connection, username: str, kind: str, now: dt.datetime) -> dt.datetime | None:
    """Count one failed password; return the end of the lock-out when this failure starts one."""
    conn.execute(insert(login_failures).values(username=username, at=now, kind=kind))
    until = locked_until(conn, username, now)
    event = "login_failed" if kind == "login" else "signature_password_failed"
    security_event(conn, username, event, f"wrong password ({kind})")
    if until is not None:
        end_sessions(conn, username, "locked out")
        security_event(conn, username, "locked_out", f"account locked until {until.isoformat()} after failed {kind}s")
    return until


_DUMMY_HASH = _HASHER.hash("not a password of anyone's")


def use_password_profile(parameters: Parameters) -> None:
    """Hash new passwords (and time unknown usernames) with ``parameters`` from now on, in this process.

    For the test suite, which signs in thousands of times (150 ms each with :data:`PASSWORD_PROFILE` on two
    cores); a server never calls it. Hashes already stored keep verifying with their own parameters.
    """
    global _HASHER, _DUMMY_HASH
    _HASHER = PasswordHasher.from_parameters(parameters)
    _DUMMY_HASH = _HASHER.hash("not a password of anyone's")


def check_password_outside(conn: Connection, username: str, password: str) -> bool:
    """Verify the password on a read connection (Argon2 takes tens of milliseconds: never inside the write
    lock); an unknown username costs the same time as a known one."""
    stored = conn.execute(select(accounts.c.password_hash).where(accounts.c.username == username)).scalar()
    return password_matches(stored or _DUMMY_HASH, password) and stored is not None


def authenticate(
    conn: Connection, username: str, password: str, now: dt.datetime | None = None, *, password_ok: bool | None = None
) -> Account:
    """The account if the password is right and the account usable; else :class:`LoginRefused` (audited).

    ``password_ok``: the result of :func:`check_password_outside`, computed before the write transaction began.
    """
    now = now or utcnow()
    row = conn.execute(select(accounts).where(accounts.c.username == username)).first()
    until = locked_until(conn, username, now) if row is not None else None
    if until is not None:
        security_event(conn, username, "login_refused", "login while locked out")
        minutes = max(1, int((until - now).total_seconds() // 60) + 1)
        raise LoginRefused(
            f"This account is locked after too many wrong passwords; try again in {minutes} minute"
            f"{'s' if minutes != 1 else ''} or ask an administrator to reset the password"
        )
    if password_ok is None:
        password_ok = row is not None and password_matches(row.password_hash, password)
    matches = password_ok
    if row is None or not matches:
        if row is not None:
            until = record_failure(conn, username, "login", now)
            if until is not None:
                raise LoginRefused(
                    "Wrong username or password; the account is now locked for 15 minutes after 5 failed logins"
                )
        else:
            security_event(conn, username, "login_failed", "unknown username")
        raise LoginRefused("Wrong username or password")
    if row.disabled:
        security_event(conn, username, "login_refused", "account disabled")
        raise LoginRefused("This account is disabled; ask an administrator")
    conn.execute(delete(login_failures).where(login_failures.c.username == username, login_failures.c.kind == "login"))
    account = load_account(conn, username)
    assert account is not None
    return account


def confirm_password(conn: Connection, username: str, password: str, now: dt.datetime | None = None) -> None:
    """Password re-entry at signing (21 CFR 11.200(a)); three failures lock the account like failed logins."""
    now = now or utcnow()
    row = conn.execute(select(accounts.c.password_hash).where(accounts.c.username == username)).first()
    if locked_until(conn, username, now) is not None:
        raise LoginRefused("This account is locked after too many wrong passwords; nothing was signed")
    if row is None or not password_matches(row.password_hash, password):
        until = record_failure(conn, username, "signature", now)
        if until is not None:
            raise LoginRefused("Wrong password; the account is now locked after 3 failed signatures")
        raise ValidationError("password", "the password is wrong; nothing was signed")
    conn.execute(
        delete(login_failures).where(login_failures.c.username == username, login_failures.c.kind == "signature")
    )


def end_sessions(conn: Connection, username: str, why: str) -> int:
    result = conn.execute(
        update(web_sessions)
        .where(web_sessions.c.username == username, web_sessions.c.ended_at.is_(None))
        .values(ended_at=utcnow(), ended_why=why)
    )
    return int(result.rowcount or 0)


def count_accounts(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(accounts)).scalar_one())
