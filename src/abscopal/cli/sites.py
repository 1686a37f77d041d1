"""``abscopal site``: the trial's sites (add, list). A site's time zone is the one its dates are shown in."""

from __future__ import annotations

import re
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.table import Table

from abscopal import domain as d
from abscopal.cli._common import console, user_errors
from abscopal.errors import ValidationError
from abscopal.settings import Settings
from abscopal.store.database import make_engine, require_schema

app = typer.Typer(
    help="The trial's sites (like REDCap data-access groups): every account's roles are held at sites.",
    no_args_is_help=True,
)

UrlOpt = Annotated[
    str | None, typer.Option("--database-url", envvar="ABSCOPAL_DATABASE_URL", help="Database URL (default: SQLite).")
]
_CODE = re.compile(r"[A-Z0-9][A-Z0-9_-]{0,19}")


def check_time_zone(name: str) -> str:
    """``name`` when it is an IANA time zone (``Asia/Shanghai``), else a sentence."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            "--time-zone", f"{name!r} is not an IANA time zone; use a name such as Asia/Shanghai or Europe/Paris"
        ) from None
    return name


@app.command("add")
@user_errors
def add_cmd(
    code: Annotated[str, typer.Argument(help="A short code: capital letters and digits, e.g. QFS.")],
    name: Annotated[str, typer.Option("--name", help="The hospital's name.")],
    country: Annotated[str, typer.Option("--country", help="ISO 3166-1 alpha-2 code, e.g. CN.")] = "CN",
    time_zone: Annotated[
        str, typer.Option("--time-zone", help="IANA time zone its dates are shown in.")
    ] = "Asia/Shanghai",
    reason: Annotated[str, typer.Option("--reason", help="Why (audited).")] = "site added",
    by: Annotated[str | None, typer.Option("--by", envvar="ABSCOPAL_USER", help="Who adds it (audited).")] = None,
    database_url: UrlOpt = None,
) -> None:
    """Add a site.

    Example: abscopal site add JNC --name 'Jinan Central Hospital' --country CN --time-zone Asia/Shanghai
    """
    from abscopal.store.unit_of_work import UnitOfWork

    site_code = code.strip()
    if not _CODE.fullmatch(site_code):
        raise ValidationError("code", f"{code!r} is not a site code: 1-20 capital letters, digits, '-' or '_'")
    if not name.strip():
        raise ValidationError("--name", "a site needs its name")
    if not re.fullmatch(r"[A-Z]{2}", country.strip()):
        raise ValidationError("--country", f"{country!r} is not a two-letter country code such as CN")
    check_time_zone(time_zone)
    engine = make_engine(database_url or Settings().resolved_database_url())
    try:
        require_schema(engine)
        with UnitOfWork(engine, (by or Settings().user).strip() or "system", reason) as uow:
            uow.sites.add(d.Site(site_code, name.strip(), country.strip(), time_zone))
            uow.commit()
    finally:
        engine.dispose()
    console.print(f"Added site {site_code} ({name.strip()}, {country.strip()}, {time_zone}).", markup=False)


@app.command("list")
@user_errors
def list_cmd(database_url: UrlOpt = None) -> None:
    """Every site: code, name, country and time zone.

    Example: abscopal site list
    """
    from abscopal.store.repository import Repository

    engine = make_engine(database_url or Settings().resolved_database_url(), read_only=True)
    try:
        require_schema(engine)
        with engine.connect() as conn:
            sites = Repository(conn).all(d.Site)
    finally:
        engine.dispose()
    if not sites:
        console.print("No sites yet; add one with `abscopal site add CODE --name ... --time-zone Asia/Shanghai`.")
        return
    table = Table("code", "name", "country", "time zone", title=f"{len(sites)} sites")
    for s in sites:
        table.add_row(s.code, s.name, s.country, s.time_zone or "(the trial's default)")
    console.print(table)
