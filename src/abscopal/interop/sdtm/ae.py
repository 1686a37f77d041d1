"""AE, Adverse Events (+ SUPPAE), interop.md §2.4. AEREL and AESER come from the safety engine.

AETERM longer than 200 bytes is split at the last space into SUPPAE AETERM1, AETERM2… (interop.md §1.4).
AEDECOD is the CTCAE v5.0 term (no licensed MedDRA here: define.xml then refuses Context Submission).
"""

from __future__ import annotations

from abscopal import domain as d
from abscopal.interop.sdtm.common import (
    Row,
    V,
    context,
    iso,
    number_seq,
    ordered,
    spec,
    split_text,
    supp_rows,
    supp_spec,
)
from abscopal.interop.sdtm.spec import Dataset, SdtmSource
from abscopal.safety.ctcae import load_ctcae
from abscopal.safety.events import is_serious, relatedness

AEOUT = {
    d.AeOutcome.RECOVERED: "RECOVERED/RESOLVED",
    d.AeOutcome.RECOVERING: "RECOVERING/RESOLVING",
    d.AeOutcome.NOT_RECOVERED: "NOT RECOVERED/NOT RESOLVED",
    d.AeOutcome.RECOVERED_WITH_SEQUELAE: "RECOVERED/RESOLVED WITH SEQUELAE",
    d.AeOutcome.FATAL: "FATAL",
    d.AeOutcome.UNKNOWN: "UNKNOWN",
}


def _yn(flag: bool) -> str:
    return "Y" if flag else "N"


def _action(action: d.AeAction | None) -> str | None:
    """AEACN (CDISC C66767): the enum's words in capitals (dose_not_changed -> DOSE NOT CHANGED)."""
    return None if action is None else action.value.replace("_", " ").upper()


def aerel(ae: d.AdverseEvent) -> str | None:
    """AEREL (interop.md §2.4): RELATED if any attribution is possible or more (safety.events.RELATED_LEVELS),
    NOT RELATED if all three were given and none is, else null (a missing attribution is ADaM's to impute)."""
    rel = relatedness(ae, missing_attribution="unrelated")
    if rel.any:
        return "RELATED"
    return None if rel.missing else "NOT RELATED"


AE = spec(
    "AE",
    "Adverse Events",
    "EVENTS",
    "One record per adverse event per subject",
    ("STUDYID", "USUBJID", "AEDECOD", "AESTDTC", "AESPID"),
    (
        V("STUDYID", "Study Identifier", core="Req", origin="Assigned"),
        V("DOMAIN", "Domain Abbreviation", core="Req", origin="Assigned"),
        V("USUBJID", "Unique Subject Identifier", core="Req", origin="Derived"),
        V("AESEQ", "Sequence Number", "Num", core="Req", origin="Derived"),
        V("AESPID", "Sponsor-Defined Identifier"),
        V("AETERM", "Reported Term for the Adverse Event", core="Req"),
        V("AELLT", "Lowest Level Term", core="Exp", origin="Assigned"),
        V("AELLTCD", "Lowest Level Term Code", "Num", core="Exp", origin="Assigned"),
        V("AEDECOD", "Dictionary-Derived Term", core="Req", origin="Assigned"),
        V("AEBODSYS", "Body System or Organ Class", core="Exp", origin="Assigned"),
        V("AESER", "Serious Event", core="Exp", origin="Derived", codelist="NY"),
        V("AEACN", "Action Taken with Study Treatment", core="Exp", codelist="ACN"),
        V("AEACNOTH", "Other Action Taken"),
        V("AEREL", "Causality", core="Exp", origin="Derived", method="MT.AEREL"),
        V("AEOUT", "Outcome of Adverse Event", codelist="OUT"),
        V("AESCONG", "Congenital Anomaly or Birth Defect", codelist="NY"),
        V("AESDISAB", "Persist or Signif Disability/Incapacity", codelist="NY"),
        V("AESDTH", "Results in Death", codelist="NY"),
        V("AESHOSP", "Requires or Prolongs Hospitalization", codelist="NY"),
        V("AESLIFE", "Is Life Threatening", codelist="NY"),
        V("AESMIE", "Other Medically Important Serious Event", codelist="NY"),
        V("AETOXGR", "Standard Toxicity Grade"),
        V("EPOCH", "Epoch", origin="Derived", codelist="EPOCH", method="MT.EPOCH"),
        V("AESTDTC", "Start Date/Time of Adverse Event", core="Exp"),
        V("AEENDTC", "End Date/Time of Adverse Event", core="Exp"),
        V("AESTDY", "Study Day of Start of Adverse Event", "Num", origin="Derived", method="MT.DY"),
        V("AEENDY", "Study Day of End of Adverse Event", "Num", origin="Derived", method="MT.DY"),
        V("AEENRTPT", "End Relative to Reference Time Point", origin="Derived"),
        V("AEENTPT", "End Reference Time Point", origin="Derived"),
    ),
)
SUPPAE = supp_spec("AE", "Supplemental Qualifiers for AE")


def build_ae(source: SdtmSource) -> list[Dataset]:
    ctx = context(source)
    ctcae = load_ctcae()
    rows: list[Row] = []
    extra: dict[str, list[str]] = {}
    for stored in source.adverse_events:
        ae = stored.value
        if ae.subject_id not in ctx.subjects:
            continue
        subj = ctx.subjects[ae.subject_id]
        term = ctcae.find(ae.term)
        pieces = split_text(ae.verbatim or ae.term)
        extra[stored.id] = pieces[1:]
        open_at_dco = ae.resolution_date is None
        rows.append(
            {
                "STUDYID": ctx.studyid,
                "DOMAIN": "AE",
                "USUBJID": subj.usubjid,
                "AESPID": ae.ae_id,
                "AETERM": pieces[0],
                "AELLT": term.term if term else ae.term,
                "AELLTCD": ae.meddra_code,
                "AEDECOD": term.term if term else ae.term,
                "AEBODSYS": term.soc if term else None,
                "AESER": _yn(is_serious(ae)),
                "AEACN": _action(ae.action_io),
                "AEACNOTH": f"RADIOTHERAPY {_action(ae.action_rt)}" if ae.action_rt is not None else None,
                "AEREL": aerel(ae),
                "AEOUT": AEOUT[ae.outcome],
                "AESCONG": _yn(ae.serious_congenital),
                "AESDISAB": _yn(ae.serious_disability),
                "AESDTH": _yn(ae.serious_death),
                "AESHOSP": _yn(ae.serious_hospitalisation),
                "AESLIFE": _yn(ae.serious_life_threatening),
                "AESMIE": _yn(ae.serious_medically_important),
                "AETOXGR": None if ae.grade is None else str(ae.grade),
                "EPOCH": subj.epoch(ae.onset_date),
                "AESTDTC": iso(ae.onset_date),
                "AEENDTC": iso(ae.resolution_date),
                "AESTDY": subj.dy(ae.onset_date),
                "AEENDY": subj.dy(ae.resolution_date),
                "AEENRTPT": "ONGOING" if open_at_dco else None,
                "AEENTPT": source.cutoff.isoformat() if open_at_dco else None,
                "_id": stored.id,
            }
        )
    rows = number_seq(rows, "AESEQ", lambda r: (str(r["AEDECOD"]), str(r["AESTDTC"]), str(r["AESPID"])))
    ids = {str(r["USUBJID"]) + "/" + str(r["AESEQ"]): str(r.pop("_id")) for r in rows}
    src = {s.id: s.value for s in source.adverse_events}

    def attribution(a: d.Attribution | None) -> str | None:
        return None if a is None else a.value.upper()

    def qualifiers(r: Row) -> list[tuple[str, str, str | None, str]]:
        rid = ids[str(r["USUBJID"]) + "/" + str(r["AESEQ"])]
        ae = src[rid]
        out: list[tuple[str, str, str | None, str]] = [
            (f"AETERM{i}", f"Reported Term, continued ({i})", piece, "CRF")
            for i, piece in enumerate(extra[rid], start=1)
        ]
        out += [
            ("AERELCF", "Relationship to CFRT", attribution(ae.attribution_cfrt), "CRF"),
            ("AERELLD", "Relationship to LDRT", attribution(ae.attribution_ldrt), "CRF"),
            ("AERELIO", "Relationship to Immunotherapy", attribution(ae.attribution_io), "CRF"),
            ("AEIRAE", "Immune-Related Adverse Event", _yn(ae.immune_related), "CRF"),
            ("AEBLGR", "Baseline Grade", None if ae.baseline_grade is None else str(ae.baseline_grade), "CRF"),
        ]
        return out

    return [ordered(AE, rows), ordered(SUPPAE, supp_rows(ctx.studyid, rows, "AE", qualifiers))]
