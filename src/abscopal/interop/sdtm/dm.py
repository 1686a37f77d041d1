"""DM, Demographics (interop.md §2.1): one record per subject screened, screen failures included."""

from __future__ import annotations

import datetime as dt

from abscopal.interop.sdtm.common import COUNTRY3, V, context, iso, ordered, spec
from abscopal.interop.sdtm.spec import Dataset, SdtmSource
from abscopal.protocol.eligibility import age_on

ARMCD = "CFRTLDRT"
ARM = "CFRT + LDRT with continued immunotherapy"

DM = spec(
    "DM",
    "Demographics",
    "SPECIAL PURPOSE",
    "One record per subject",
    ("STUDYID", "USUBJID"),
    (
        V("STUDYID", "Study Identifier", core="Req", origin="Assigned"),
        V("DOMAIN", "Domain Abbreviation", core="Req", origin="Assigned"),
        V("USUBJID", "Unique Subject Identifier", core="Req", origin="Derived"),
        V("SUBJID", "Subject Identifier for the Study", core="Req"),
        V("RFSTDTC", "Subject Reference Start Date/Time", core="Exp", origin="Derived"),
        V("RFENDTC", "Subject Reference End Date/Time", core="Exp", origin="Derived"),
        V("RFXSTDTC", "Date/Time of First Study Treatment", core="Exp", origin="Derived"),
        V("RFXENDTC", "Date/Time of Last Study Treatment", core="Exp", origin="Derived"),
        V("RFICDTC", "Date/Time of Informed Consent", core="Exp"),
        V("RFPENDTC", "Date/Time of End of Participation", core="Exp", origin="Derived"),
        V("DTHDTC", "Date/Time of Death", core="Exp"),
        V("DTHFL", "Subject Death Flag", core="Exp", origin="Derived", codelist="NY"),
        V("SITEID", "Study Site Identifier", core="Req"),
        V("BRTHDTC", "Date/Time of Birth"),
        V("AGE", "Age", "Num", core="Exp", origin="Derived"),
        V("AGEU", "Age Units", core="Exp", origin="Assigned", codelist="AGEU"),
        V("SEX", "Sex", core="Req", codelist="SEX"),
        V("RACE", "Race", core="Exp", codelist="RACE", comment="Collected only where the site records it (G1)"),
        V("ETHNIC", "Ethnicity", codelist="ETHNIC", comment="Collected only where the site records it (G1)"),
        V("ARMCD", "Planned Arm Code", core="Exp", origin="Assigned"),
        V("ARM", "Description of Planned Arm", core="Exp", origin="Assigned"),
        V("ACTARMCD", "Actual Arm Code", core="Exp", origin="Derived"),
        V("ACTARM", "Description of Actual Arm", core="Exp", origin="Derived"),
        V("ARMNRS", "Reason Arm and/or Actual Arm is Null", core="Exp", origin="Derived"),
        V("COUNTRY", "Country", core="Req", origin="Derived", codelist="ISO 3166"),
    ),
)


def _birth(day: dt.date, precision: str) -> str:
    """BRTHDTC: the year only unless ``--birth-date day`` (interop.md §2.1: minimum necessary identifiers)."""
    return day.isoformat() if precision == "day" else f"{day.year:04d}"


def build_dm(source: SdtmSource) -> list[Dataset]:
    ctx = context(source)
    screenings = {s.value.subject_id: s.value for s in source.screenings}
    sites = {s.code: s for s in source.sites}
    rows = []
    for stored in source.patients:
        p = stored.value
        subj = ctx.subjects[p.subject_id]
        scr = screenings.get(p.subject_id)
        consent = scr.consent_date if scr else None
        age = scr.age_years if scr and scr.age_years is not None else None
        if age is None and consent is not None:
            age = age_on(p.birth_date, consent)
        site = sites.get(p.site_code)
        country = site.country if site else "CN"
        enrolled = p.enrolment_date is not None
        treated = subj.rfxstdtc is not None
        if not enrolled:
            reason: str | None = "SCREEN FAILURE" if p.status.value == "screen_failed" else "NOT ASSIGNED"
        else:
            reason = None if treated else "NOT TREATED"
        end = p.death_date or p.withdrawal_date or p.last_contact_date
        dated = [
            x
            for x in (consent, scr.screening_date if scr else None, p.enrolment_date, subj.rfxendtc, end)
            if x is not None
        ]
        rows.append(
            {
                "STUDYID": ctx.studyid,
                "DOMAIN": "DM",
                "USUBJID": subj.usubjid,
                "SUBJID": p.subject_id,
                "RFSTDTC": iso(subj.rfstdtc),
                "RFENDTC": iso(end) if enrolled else None,
                "RFXSTDTC": iso(subj.rfxstdtc),
                "RFXENDTC": iso(subj.rfxendtc),
                "RFICDTC": iso(consent),
                "RFPENDTC": iso(max(dated)) if dated else None,
                "DTHDTC": iso(p.death_date),
                "DTHFL": "Y" if p.death_date is not None else None,
                "SITEID": p.site_code,
                "BRTHDTC": _birth(p.birth_date, source.options.get("birth_date", "year")),
                "AGE": age,
                "AGEU": "YEARS" if age is not None else None,
                "SEX": p.sex.value,
                "RACE": p.race.upper() if p.race else None,
                "ETHNIC": p.ethnicity.upper() if p.ethnicity else None,
                "ARMCD": ARMCD if enrolled else None,
                "ARM": ARM if enrolled else None,
                "ACTARMCD": ARMCD if treated and enrolled else None,
                "ACTARM": ARM if treated and enrolled else None,
                "ARMNRS": reason,
                "COUNTRY": COUNTRY3.get(country, country),
            }
        )
    rows.sort(key=lambda r: str(r["USUBJID"]))
    return [ordered(DM, rows)]
