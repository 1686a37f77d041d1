"""``abscopal user``: the web application's accounts: add, change the password, disable, enable, list.

Every change is written to the audit trail as the user named by ``--by`` (or ``ABSCOPAL_USER``). Passwords are
asked twice with a hidden prompt, or read from standard input (``--password-stdin``) for scripts; they follow
the policy of :func:`abscopal.web.accounts.password_problems` (12 characters or more, not the username...).
"""

from __future__ import annotations

import secrets
import sys
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import Connection, Engine, select

from abscopal import domain as d
from abscopal.cli._common import console, user_errors
from abscopal.errors import ValidationError
from abscopal.settings import Settings
from abscopal.store.database import make_engine, require_schema

app = typer.Typer(
    help=(
        "Accounts of the web application: one role per site (site '*': every site, for the statistician and the "
        "administrator). Start a new trial database with its first administrator:\n\n"
        "    abscopal user add admin --full-name 'Qian Hong' --role admin --site '*'"
    ),
    no_args_is_help=True,
)

UrlOpt = Annotated[
    str | None, typer.Option("--database-url", envvar="ABSCOPAL_DATABASE_URL", help="Database URL (default: SQLite).")
]
ByOpt = Annotated[str | None, typer.Option("--by", envvar="ABSCOPAL_USER", help="Who makes the change (audited).")]
StdinOpt = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input (one line), for scripts.")
]
ROLE_NAMES = ", ".join(dict.fromkeys(r.value for r in d.Role))


def _engine(url: str | None) -> Engine:
    engine = make_engine(url or Settings().resolved_database_url())
    require_schema(engine)
    return engine


def _by(by: str | None) -> str:
    return (by or Settings().user).strip() or "system"


def _role(text: str) -> d.Role:
    key = text.strip().lower().replace("-", "_").replace(" ", "_")
    for role in d.Role:
        if key in (role.value, role.name.lower()):
            return role
    aliases = {"dcp": d.Role.DEPUTY_CHIEF_PHYSICIAN, "radonc": d.Role.RADIATION_ONCOLOGIST}
    if key in aliases:
        return aliases[key]
    raise ValidationError("--role", f"{text!r} is not a role; the roles are {ROLE_NAMES}")


def read_password(from_stdin: bool, prompt: str = "Password") -> str:
    """The new password: one line of standard input, or typed twice at a hidden prompt."""
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise ValidationError("--password-stdin", "standard input held no password")
        return line
    typed: str = typer.prompt(prompt, hide_input=True, confirmation_prompt=True)
    return typed


def _patient_site(conn: Connection, subject_id: str) -> str:
    from abscopal.store.tables import ENTITIES

    patients = ENTITIES["patients"].table
    site = conn.execute(
        select(patients.c.site_code).where(patients.c.subject_id == subject_id, patients.c.removed_reason.is_(None))
    ).scalar_one_or_none()
    if site is None:
        raise ValidationError("--patient", f"there is no patient {subject_id!r}")
    return str(site)


@app.command("add")
@user_errors
def add_cmd(
    username: Annotated[str, typer.Argument(help="The sign-in name: letters, digits, '.', '_' or '-'.")],
    full_name: Annotated[str, typer.Option("--full-name", help="The person's name, as signatures show it.")],
    roles: Annotated[
        list[str] | None, typer.Option("--role", help=f"A role ({ROLE_NAMES}); one per --site, in the same order.")
    ] = None,
    sites: Annotated[
        list[str] | None, typer.Option("--site", help="A site code for the --role at the same position ('*': all).")
    ] = None,
    pi: Annotated[bool, typer.Option("--pi", help="The investigator is the site's principal investigator.")] = False,
    patient: Annotated[
        str | None, typer.Option("--patient", help="A patient's own account: the subject id (role and site follow).")
    ] = None,
    language: Annotated[str, typer.Option("--language", help="en or zh_Hans.")] = "en",
    password_stdin: StdinOpt = False,
    by: ByOpt = None,
    database_url: UrlOpt = None,
) -> None:
    """Add an account with a role at one site or more: --role and --site go in pairs, in the same order.

    Examples:

        abscopal user add admin --full-name 'Qian Hong' --role admin --site '*'

        abscopal user add crc.xu --full-name 'Xu Fang' --role coordinator --site QFS --role coordinator --site JNC

        abscopal user add wang --full-name 'Wang Jianguo' --role investigator --site QFS --pi

        abscopal user add p0001 --full-name 'Song Guoqiang' --patient QFS-000001 --language zh_Hans

        abscopal user add dm.guo --full-name 'Guo Ying' --role data_manager --site QFS --password-stdin < pw.txt
    """
    from abscopal.web.accounts import Account, Membership, create_account

    role_list, site_list = list(roles or []), list(sites or [])
    if patient is not None and not role_list:
        role_list = [d.Role.PATIENT.value]
    patient_site_follows = patient is not None and not site_list and len(role_list) == 1
    if len(role_list) != len(site_list) and not patient_site_follows:
        raise ValidationError(
            "--role", "give one --site for each --role, in the same order (e.g. --role coordinator --site QFS)"
        )
    if not role_list:
        raise ValidationError("--role", "an account needs a role at a site: --role ROLE --site CODE")
    parsed = [_role(r) for r in role_list]
    if pi and d.Role.INVESTIGATOR not in parsed:
        raise ValidationError("--pi", "only an investigator can be a site's principal investigator")
    engine = _engine(database_url)
    try:
        with engine.connect() as conn:
            if patient is not None:
                home = _patient_site(conn, patient)
                site_list = site_list or [home]
        ms = [
            Membership(c.strip(), r, pi=pi and r is d.Role.INVESTIGATOR) for r, c in zip(parsed, site_list, strict=True)
        ]

        def create(password: str, check_policy: bool = True) -> Account:
            return create_account(
                conn, by=_by(by), username=username, full_name=full_name, password=password, memberships_=ms,
                language=language, subject_id=patient, check_policy=check_policy,
            )  # fmt: skip

        with engine.connect() as conn, conn.begin():  # a dry run: refuses a taken name or a wrong site before the
            create(secrets.token_urlsafe(16), check_policy=False)  # password is asked; rolled back
            conn.rollback()
        password = read_password(password_stdin)
        with engine.begin() as conn:
            account = create(password)
    finally:
        engine.dispose()
    held = ", ".join(f"{m.role.value}@{m.site_code}{' (PI)' if m.pi else ''}" for m in account.memberships)
    console.print(f"Added {account.username} ({account.full_name}): {held}.", markup=False, highlight=False)


@app.command("passwd")
@user_errors
def passwd_cmd(
    username: Annotated[str, typer.Argument(help="Whose password.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (audited).")] = "password reset",
    password_stdin: StdinOpt = False,
    by: ByOpt = None,
    database_url: UrlOpt = None,
) -> None:
    """Set a new password (ends the account's sessions and clears its lock-out).

    Example: abscopal user passwd crc.xu --reason 'forgotten password'
    """
    from abscopal.web.accounts import end_sessions, require_account, set_password

    engine = _engine(database_url)
    try:
        with engine.connect() as conn:
            require_account(conn, username)  # before asking for a password
        password = read_password(password_stdin, "New password")
        with engine.begin() as conn:
            set_password(conn, by=_by(by), username=username, password=password, reason=reason)
            ended = end_sessions(conn, username, "password changed")
    finally:
        engine.dispose()
    note = f"; {ended} session{'s' if ended != 1 else ''} ended" if ended else ""
    console.print(f"Password of {username} changed{note}.", markup=False, highlight=False)


def _set_disabled(username: str, disabled: bool, reason: str, by: str | None, database_url: str | None) -> None:
    from abscopal.web.accounts import require_account, set_disabled

    engine = _engine(database_url)
    try:
        with engine.begin() as conn:
            was = require_account(conn, username).disabled
            set_disabled(conn, by=_by(by), username=username, disabled=disabled, reason=reason)
    finally:
        engine.dispose()
    state = "disabled" if disabled else "enabled"
    if was == disabled:
        console.print(f"{username} was already {state}; nothing changed.", markup=False, highlight=False)
    else:
        extra = " and signed out everywhere" if disabled else ""
        console.print(f"{username} is {state}{extra}.", markup=False, highlight=False)


@app.command("disable")
@user_errors
def disable_cmd(
    username: Annotated[str, typer.Argument(help="Whose account.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (audited), e.g. 'left the trial team'.")],
    by: ByOpt = None,
    database_url: UrlOpt = None,
) -> None:
    """Disable an account: its sessions end at once and it cannot sign in (its history stays).

    Example: abscopal user disable crc.ma --reason 'left the trial team'
    """
    _set_disabled(username, True, reason, by, database_url)


@app.command("enable")
@user_errors
def enable_cmd(
    username: Annotated[str, typer.Argument(help="Whose account.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (audited).")] = "account enabled again",
    by: ByOpt = None,
    database_url: UrlOpt = None,
) -> None:
    """Enable a disabled account again.

    Example: abscopal user enable crc.ma --reason 'back from leave'
    """
    _set_disabled(username, False, reason, by, database_url)


@app.command("list")
@user_errors
def list_cmd(database_url: UrlOpt = None) -> None:
    """Every account: username, name, roles at sites, and whether it is disabled.

    Example: abscopal user list
    """
    from abscopal.web.accounts import list_accounts

    url = database_url or Settings().resolved_database_url()
    engine = make_engine(url, read_only=True)
    try:
        require_schema(engine)
        with engine.connect() as conn:
            everyone = list_accounts(conn)
    finally:
        engine.dispose()
    if not everyone:
        console.print("No accounts yet; add one with `abscopal user add NAME --full-name ... --role admin --site '*'`.")
        return
    table = Table("username", "name", "roles@sites", "disabled", title=f"{len(everyone)} accounts")
    for a in everyone:
        held = ", ".join(f"{m.role.value}@{m.site_code}{' (PI)' if m.pi else ''}" for m in a.memberships)
        if a.subject_id:
            held += f" ({a.subject_id})"
        table.add_row(a.username, a.full_name, held, "yes" if a.disabled else "")
    console.print(table)
