"""Trial design datasets from the protocol file: TS, TI (per protocol version), TA, TE, TV (interop.md §2.8).

TS values come from ``[trial]`` and ``[interop]``; a parameter the protocol does not state (phase, planned
enrolment: G10) gets TSVAL null and TSVALNF "NI". A TSVAL longer than 200 bytes continues in TSVAL1, TSVAL2…
(SDTMIG 3.4 TS assumption 8), which this module adds as extra variables only when a value needs them.
"""

from __future__ import annotations

from abscopal.interop.sdtm.common import BASELINE_VISIT, COUNTRY3, SCREENING_VISIT, Row, V, ordered, spec, split_text
from abscopal.interop.sdtm.dm import ARM, ARMCD
from abscopal.interop.sdtm.spec import Dataset, DatasetSpec, SdtmSource
from abscopal.protocol.calendar import questionnaire_visit_code

_TS_VARS = (
    V("STUDYID", "Study Identifier", core="Req", origin="Assigned"),
    V("DOMAIN", "Domain Abbreviation", core="Req", origin="Assigned"),
    V("TSSEQ", "Sequence Number", "Num", core="Req", origin="Derived"),
    V("TSGRPID", "Group ID"),
    V("TSPARMCD", "Trial Summary Parameter Short Name", core="Req", origin="Protocol", codelist="TSPARMCD"),
    V("TSPARM", "Trial Summary Parameter", core="Req", origin="Protocol", codelist="TSPARM"),
    V("TSVAL", "Parameter Value", core="Exp", origin="Protocol"),
    V("TSVALNF", "Parameter Null Flavor", origin="Assigned"),
    V("TSVALCD", "Parameter Value Code", core="Exp", origin="Assigned"),
    V("TSVCDREF", "Name of the Reference Terminology", core="Exp", origin="Assigned"),
    V("TSVCDVER", "Version of the Reference Terminology", core="Exp", origin="Assigned"),
)


def _ts_spec(extra: int) -> DatasetSpec:
    cont = tuple(V(f"TSVAL{i}", f"Parameter Value {i}", origin="Protocol") for i in range(1, extra + 1))
    at = [v.name for v in _TS_VARS].index("TSVAL") + 1
    return spec(
        "TS",
        "Trial Summary",
        "TRIAL DESIGN",
        "One record per trial summary parameter value",
        ("STUDYID", "TSPARMCD", "TSSEQ"),
        (*_TS_VARS[:at], *cont, *_TS_VARS[at:]),
    )


TS = _ts_spec(0)
_FREE_TEXT = (
    "TITLE",
    "SPONSOR",
    "REGID",
    "SSTDTC",
    "SENDTC",
    "DCUTDTC",
    "AGEMIN",
    "AGEMAX",
    "PLANSUB",
    "SDTIGVER",
    "OUTMSPRI",
    "OUTMSSEC",
)


def build_ts(source: SdtmSource) -> list[Dataset]:
    p = source.protocols.current
    studyid = p.interop.studyid or p.trial.id
    age = p.eligibility.inclusion.get("IN2")
    age_check = next(iter(age.checks.values())) if age else None
    lo = getattr(age_check, "min", None)
    hi = getattr(age_check, "max", None)
    planned = p.interop.planned_enrolment
    params: list[tuple[str, str, str | None]] = [
        ("TITLE", "Trial Title", p.trial.title),
        ("SPONSOR", "Clinical Study Sponsor", p.trial.sponsor),
        ("REGID", "Registry Identifier", p.trial.id),
        ("SSTDTC", "Study Start Date", p.trial.start_date.isoformat()),
        ("SENDTC", "Study End Date", p.trial.completion_date.isoformat()),
        ("STYPE", "Study Type", "INTERVENTIONAL"),
        ("INTMODEL", "Intervention Model", "SINGLE GROUP"),
        ("RANDOM", "Trial is Randomized", "N"),
        ("TBLIND", "Trial Blinding Schema", "OPEN LABEL"),
        ("TCNTRL", "Control Type", "NONE"),
        ("TTYPE", "Trial Type", "EFFICACY"),
        ("TTYPE", "Trial Type", "SAFETY"),
        ("INDIC", "Trial Disease/Condition Indication", "NON-SMALL CELL LUNG CANCER"),
        ("TRT", "Investigational Therapy or Treatment", "LOW-DOSE RADIOTHERAPY"),
        ("TRT", "Investigational Therapy or Treatment", "CONVENTIONAL FRACTIONATED RADIOTHERAPY"),
        ("CURTRT", "Current Therapy or Treatment", "IMMUNE CHECKPOINT INHIBITOR"),
        ("ADDON", "Added on to Existing Treatments", "Y"),
        ("INTTYPE", "Intervention Type", "RADIATION"),
        ("AGEMIN", "Planned Minimum Age of Subjects", None if lo is None else f"P{int(lo)}Y"),
        ("AGEMAX", "Planned Maximum Age of Subjects", None if hi is None else f"P{int(hi)}Y"),
        ("SEXPOP", "Sex of Participants", "BOTH"),
        ("TPHASE", "Trial Phase Classification", p.interop.phase),
        (
            "PLANSUB",
            "Planned Number of Subjects",
            None if planned is None else str(planned),
        ),
        ("FCNTRY", "Planned Country of Investigational Sites", COUNTRY3.get(p.trial.country, p.trial.country)),
        ("DCUTDTC", "Data Cutoff Date", source.cutoff.isoformat()),
        ("SDTIGVER", "SDTM IG Version", p.interop.sdtmig_version),
    ]
    endpoints = list(p.trial.endpoints)
    params += [("OUTMSPRI", "Primary Outcome Measure", e) for e in endpoints[:1]]
    params += [("OUTMSSEC", "Secondary Outcome Measure", e) for e in endpoints[1:]]
    pieces = {i: split_text(v) if v else [v] for i, (_, _, v) in enumerate(params)}
    extra = max(len(x) for x in pieces.values()) - 1
    ts = _ts_spec(extra)
    seq: dict[str, int] = {}
    rows: list[Row] = []
    for i, (code, name, value) in enumerate(params):
        seq[code] = seq.get(code, 0) + 1
        coded = value is not None and code not in _FREE_TEXT
        row: Row = {
            "STUDYID": studyid,
            "DOMAIN": "TS",
            "TSSEQ": seq[code],
            "TSPARMCD": code,
            "TSPARM": name,
            "TSVAL": pieces[i][0],
            "TSVALNF": "NI" if value is None else None,
            "TSVCDREF": "CDISC CT" if coded else None,
            "TSVCDVER": p.interop.ct_version if coded else None,
        }
        for k, piece in enumerate(pieces[i][1:], start=1):
            row[f"TSVAL{k}"] = piece
        rows.append(row)
    rows.sort(key=lambda r: (str(r["TSPARMCD"]), int(r["TSSEQ"] or 0)))
    return [ordered(ts, rows)]


TI = spec(
    "TI",
    "Trial Inclusion/Exclusion Criteria",
    "TRIAL DESIGN",
    "One record per I/E criterion",
    ("STUDYID", "IETESTCD", "TIVERS"),
    (
        V("STUDYID", "Study Identifier", core="Req", origin="Assigned"),
        V("DOMAIN", "Domain Abbreviation", core="Req", origin="Assigned"),
        V("IETESTCD", "Incl/Excl Criterion Short Name", core="Req", origin="Protocol"),
        V("IETEST", "Inclusion/Exclusion Criterion", core="Req", origin="Protocol"),
        V("IECAT", "Inclusion/Exclusion Category", core="Req", origin="Protocol", codelist="IECAT"),
        V("TIRL", "Inclusion/Exclusion Criterion Rule", origin="Protocol"),
        V("TIVERS", "Protocol Criteria Versions", origin="Protocol"),
    ),
)


def build_ti(source: SdtmSource) -> list[Dataset]:
    """Every criterion of every protocol version (TIVERS = version number); TIRL names the checks."""
    pf = source.protocols
    studyid = pf.current.interop.studyid or pf.current.trial.id
    rows: list[Row] = []
    for number in pf.versions:
        protocol = pf.version(number)
        for section, criteria in (
            ("INCLUSION", protocol.eligibility.inclusion),
            ("EXCLUSION", protocol.eligibility.exclusion),
        ):
            for cid, crit in criteria.items():
                rule = "; ".join(f"{name} ({check.kind})" for name, check in crit.checks.items())
                rows.append(
                    {
                        "STUDYID": studyid,
                        "DOMAIN": "TI",
                        "IETESTCD": cid,
                        "IETEST": split_text(crit.label)[0],
                        "IECAT": section,
                        "TIRL": split_text(rule)[0],
                        "TIVERS": number,
                    }
                )
    return [ordered(TI, rows)]


_EPOCHS = (
    ("SCRN", "SCREENING", "Informed consent", "Enrolment"),
    ("TRT", "TREATMENT", "First study treatment", "Last study treatment"),
    ("FU", "FOLLOW-UP", "Day after the last study treatment", "End of study"),
)

TA = spec(
    "TA",
    "Trial Arms",
    "TRIAL DESIGN",
    "One record per planned Element per Arm",
    ("STUDYID", "ARMCD", "TAETORD"),
    (
        V("STUDYID", "Study Identifier", core="Req", origin="Assigned"),
        V("DOMAIN", "Domain Abbreviation", core="Req", origin="Assigned"),
        V("ARMCD", "Planned Arm Code", core="Req", origin="Protocol"),
        V("ARM", "Description of Planned Arm", core="Req", origin="Protocol"),
        V("TAETORD", "Planned Order of Element within Arm", "Num", core="Req", origin="Protocol"),
        V("ETCD", "Element Code", core="Req", origin="Protocol"),
        V("ELEMENT", "Description of Element", origin="Protocol"),
        V("EPOCH", "Epoch", core="Req", origin="Protocol", codelist="EPOCH"),
    ),
)
TE = spec(
    "TE",
    "Trial Elements",
    "TRIAL DESIGN",
    "One record per planned Element",
    ("STUDYID", "ETCD"),
    (
        V("STUDYID", "Study Identifier", core="Req", origin="Assigned"),
        V("DOMAIN", "Domain Abbreviation", core="Req", origin="Assigned"),
        V("ETCD", "Element Code", core="Req", origin="Protocol"),
        V("ELEMENT", "Description of Element", core="Req", origin="Protocol"),
        V("TESTRL", "Rule for Start of Element", core="Req", origin="Protocol"),
        V("TEENRL", "Rule for End of Element", core="Exp", origin="Protocol"),
    ),
)
TV = spec(
    "TV",
    "Trial Visits",
    "TRIAL DESIGN",
    "One record per planned Visit per Arm",
    ("STUDYID", "VISITNUM"),
    (
        V("STUDYID", "Study Identifier", core="Req", origin="Assigned"),
        V("DOMAIN", "Domain Abbreviation", core="Req", origin="Assigned"),
        V("VISITNUM", "Visit Number", "Num", core="Req", origin="Protocol"),
        V("VISIT", "Visit Name", origin="Protocol"),
        V("VISITDY", "Planned Study Day of Visit", "Num", origin="Protocol"),
        V("TVSTRL", "Visit Start Rule", core="Req", origin="Protocol"),
    ),
)


def _studyid(source: SdtmSource) -> str:
    p = source.protocols.current
    return p.interop.studyid or p.trial.id


def build_ta(source: SdtmSource) -> list[Dataset]:
    sid = _studyid(source)
    rows: list[Row] = [
        {
            "STUDYID": sid,
            "DOMAIN": "TA",
            "ARMCD": ARMCD,
            "ARM": ARM,
            "TAETORD": i,
            "ETCD": cd,
            "ELEMENT": el,
            "EPOCH": el,
        }
        for i, (cd, el, _, _) in enumerate(_EPOCHS, start=1)
    ]
    return [ordered(TA, rows)]


def build_te(source: SdtmSource) -> list[Dataset]:
    sid = _studyid(source)
    rows: list[Row] = [
        {"STUDYID": sid, "DOMAIN": "TE", "ETCD": cd, "ELEMENT": el, "TESTRL": start, "TEENRL": end}
        for cd, el, start, end in _EPOCHS
    ]
    return [ordered(TE, rows)]


def build_tv(source: SdtmSource) -> list[Dataset]:
    """Screening 1, baseline 2, assessment k at enrolment + k·interval days -> 2+k (interop.md §2.0)."""
    p = source.protocols.current
    sid = _studyid(source)
    s = p.schedule
    rows: list[Row] = [
        {
            "STUDYID": sid,
            "DOMAIN": "TV",
            "VISITNUM": SCREENING_VISIT[0],
            "VISIT": SCREENING_VISIT[1],
            "VISITDY": None,
            "TVSTRL": "Screening, before enrolment",
        },
        {
            "STUDYID": sid,
            "DOMAIN": "TV",
            "VISITNUM": BASELINE_VISIT[0],
            "VISIT": BASELINE_VISIT[1],
            "VISITDY": None,
            "TVSTRL": "Enrolment",
        },
    ]
    for k in range(1, s.max_follow_up_days // s.assessment_interval_days + 1):
        days = k * s.assessment_interval_days
        rows.append(
            {
                "STUDYID": sid,
                "DOMAIN": "TV",
                "VISITNUM": 2.0 + k,
                "VISIT": questionnaire_visit_code(k, s).upper().replace("_", " "),
                "VISITDY": None,
                "TVSTRL": f"Enrolment + {days} days (window +/- {s.assessment_window_days} days)",
            }
        )
    return [ordered(TV, rows)]
