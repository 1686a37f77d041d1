"""define.xml 2.1 (interop.md §3, §8), checked by independent readers: xmlschema against the Define-XML 2.1 XSD
shipped with odmlib, odmlib's XMLDefineLoader, and lxml for the references between definitions.

The datasets are built here from specs of our own (not the SDTM builders), so that each expected value is read
off the rows below: e.g. DM.USUBJID's longest value "NCT05906329-QFS-000003" is 22 bytes.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import xmlschema
from lxml import etree
from odmlib import define_loader, loader, schema_manager

from abscopal.errors import ValidationError
from abscopal.interop.define import write_define, write_define_html
from abscopal.interop.sdtm.spec import Dataset, DatasetSpec, Variable
from abscopal.protocol.model import ProtocolFile, load_bundled

NS = {"odm": "http://www.cdisc.org/ns/odm/v1.3", "def": "http://www.cdisc.org/ns/def/v2.1"}
CREATED = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
S = "NCT05906329"

DM = DatasetSpec(
    "DM",
    "Demographics",
    "SPECIAL PURPOSE",
    "One record per subject",
    ("STUDYID", "USUBJID"),
    (
        Variable("STUDYID", "Study Identifier", core="Req"),
        Variable("DOMAIN", "Domain Abbreviation", core="Req", origin="Assigned"),
        Variable("USUBJID", "Unique Subject Identifier", core="Req"),
        Variable("AGE", "Age", type="Num", core="Exp", origin="Derived", method="MT.AGE"),
        Variable("SEX", "Sex", core="Req", codelist="SEX"),
        Variable("RFSTDTC", "Subject Reference Start Date/Time", core="Exp", comment="Date of the first RT fraction."),
    ),
)
DM_ROWS = [
    {"STUDYID": S, "DOMAIN": "DM", "USUBJID": f"{S}-QFS-000001", "AGE": 61, "SEX": "M", "RFSTDTC": "2024-01-02"},
    {"STUDYID": S, "DOMAIN": "DM", "USUBJID": f"{S}-QFS-000002", "AGE": 7, "SEX": "F", "RFSTDTC": "2024-02-11"},
    {"STUDYID": S, "DOMAIN": "DM", "USUBJID": f"{S}-QFS-000003", "AGE": 58, "SEX": "M", "RFSTDTC": None},
]
AE = DatasetSpec(
    "AE",
    "Adverse Events",
    "EVENTS",
    "One record per adverse event per subject",
    ("STUDYID", "USUBJID", "AETERM", "AESTDTC"),
    (
        Variable("STUDYID", "Study Identifier", core="Req"),
        Variable("USUBJID", "Unique Subject Identifier", core="Req"),
        Variable("AESEQ", "Sequence Number", type="Num", core="Req"),
        Variable("AETERM", "Reported Term for the Adverse Event", core="Req"),
        Variable("AESER", "Serious Event", core="Exp", origin="Derived", codelist="NY"),
        Variable("AESTDTC", "Start Date/Time of Adverse Event", core="Exp"),
        Variable("AESTDY", "Study Day of Start of Adverse Event", type="Num", origin="Derived"),
    ),
)
AE_ROWS = [
    {
        "STUDYID": S,
        "USUBJID": f"{S}-QFS-000001",
        "AESEQ": 1,
        "AETERM": "Pneumonitis",
        "AESER": "Y",
        "AESTDTC": "2024-03-01",
        "AESTDY": 60,
    },
    {
        "STUDYID": S,
        "USUBJID": f"{S}-QFS-000001",
        "AESEQ": 2,
        "AETERM": "Fatigue",
        "AESER": "N",
        "AESTDTC": "2024-01-05",
        "AESTDY": 4,
    },
]
SUPPAE = DatasetSpec(
    "SUPPAE",
    "Supplemental Qualifiers for AE",
    "RELATIONSHIP",
    "One record per supplemental qualifier per related parent domain record",
    ("STUDYID", "RDOMAIN", "USUBJID", "IDVAR", "IDVARVAL", "QNAM"),
    (
        Variable("STUDYID", "Study Identifier", core="Req"),
        Variable("RDOMAIN", "Related Domain Abbreviation", core="Req", origin="Assigned"),
        Variable("USUBJID", "Unique Subject Identifier", core="Req"),
        Variable("IDVAR", "Identifying Variable", core="Exp", origin="Assigned"),
        Variable("IDVARVAL", "Identifying Variable Value", core="Exp", origin="Assigned"),
        Variable("QNAM", "Qualifier Variable Name", core="Req", origin="Assigned"),
        Variable("QLABEL", "Qualifier Variable Label", core="Req", origin="Assigned"),
        Variable("QVAL", "Data Value", core="Req"),
    ),
)
SUPPAE_ROWS = [
    {
        "STUDYID": S,
        "RDOMAIN": "AE",
        "USUBJID": f"{S}-QFS-000001",
        "IDVAR": "AESEQ",
        "IDVARVAL": "1",
        "QNAM": "AERELCF",
        "QLABEL": "Relationship to CFRT",
        "QVAL": "PROBABLE",
    },
    {
        "STUDYID": S,
        "RDOMAIN": "AE",
        "USUBJID": f"{S}-QFS-000001",
        "IDVAR": "AESEQ",
        "IDVARVAL": "1",
        "QNAM": "AEIRAE",
        "QLABEL": "Immune-related AE",
        "QVAL": "Y",
    },
]
TR = DatasetSpec(
    "TR",
    "Tumor/Lesion Results",
    "FINDINGS",
    "One record per tumor measurement per assessment per visit per subject",
    ("STUDYID", "USUBJID", "TRLNKID", "TRTESTCD", "TRDTC"),
    (
        Variable("STUDYID", "Study Identifier", core="Req"),
        Variable("USUBJID", "Unique Subject Identifier", core="Req"),
        Variable("TRSEQ", "Sequence Number", type="Num", core="Req"),
        Variable("TRLNKID", "Link ID", core="Exp"),
        Variable("TRTESTCD", "Tumor/Lesion Assessment Short Name", core="Req", codelist="TRTESTCD"),
        Variable("TRORRES", "Result or Finding in Original Units", core="Exp"),
        Variable("TRSTRESN", "Numeric Result/Finding in Standard Units", type="Num", core="Exp"),
        Variable("TRDTC", "Date/Time of Tumor Measurement", core="Exp"),
    ),
)
TR_ROWS = [
    {
        "STUDYID": S,
        "USUBJID": f"{S}-QFS-000001",
        "TRSEQ": 1,
        "TRLNKID": "T01",
        "TRTESTCD": "LDIAM",
        "TRORRES": "23.5",
        "TRSTRESN": 23.5,
        "TRDTC": "2024-01-01",
    },
    {
        "STUDYID": S,
        "USUBJID": f"{S}-QFS-000001",
        "TRSEQ": 2,
        "TRLNKID": "",
        "TRTESTCD": "SUMDIAM",
        "TRORRES": "123.5",
        "TRSTRESN": 123.5,
        "TRDTC": "2024-01-01",
    },
]
RS = DatasetSpec(
    "RS",
    "Disease Response and Clin Classification",
    "FINDINGS",
    "One record per response assessment per visit per subject",
    ("STUDYID", "USUBJID", "RSCAT", "RSTESTCD", "RSDTC"),
    (
        Variable("STUDYID", "Study Identifier", core="Req"),
        Variable("USUBJID", "Unique Subject Identifier", core="Req"),
        Variable("RSSEQ", "Sequence Number", type="Num", core="Req"),
        Variable("RSTESTCD", "Assessment Short Name", core="Req"),
        Variable("RSCAT", "Category for Assessment", core="Exp"),
        Variable("RSSTRESC", "Character Result/Finding in Std Format", core="Exp"),
        Variable("RSEVAL", "Evaluator", core="Exp"),
        Variable("RSDTC", "Date/Time of Assessment", core="Exp"),
    ),
)
RS_ROWS = [
    {
        "STUDYID": S,
        "USUBJID": f"{S}-QFS-000001",
        "RSSEQ": 1,
        "RSTESTCD": "OVRLRESP",
        "RSCAT": "RECIST 1.1",
        "RSSTRESC": "PR",
        "RSEVAL": "INVESTIGATOR",
        "RSDTC": "2024-02-12",
    },
    {
        "STUDYID": S,
        "USUBJID": f"{S}-QFS-000001",
        "RSSEQ": 2,
        "RSTESTCD": "OVRLRESP",
        "RSCAT": "iRECIST",
        "RSSTRESC": "iPR",
        "RSEVAL": "SPONSOR",
        "RSDTC": "2024-02-12",
    },
]
EX = DatasetSpec(
    "EX",
    "Exposure",
    "INTERVENTIONS",
    "One record per constant dosing interval per subject",
    ("STUDYID", "USUBJID", "EXTRT", "EXSTDTC"),
    (
        Variable("STUDYID", "Study Identifier", core="Req"),
        Variable("USUBJID", "Unique Subject Identifier", core="Req"),
        Variable("EXTRT", "Name of Treatment", core="Req"),
        Variable("EXSTDTC", "Start Date/Time of Treatment", core="Exp"),
    ),
)


def datasets() -> list[Dataset]:
    return [
        Dataset(DM, DM_ROWS),
        Dataset(AE, AE_ROWS),
        Dataset(SUPPAE, SUPPAE_ROWS),
        Dataset(TR, TR_ROWS),
        Dataset(RS, RS_ROWS),
        Dataset(EX, []),
    ]


@pytest.fixture(scope="module")
def protocols() -> ProtocolFile:
    return load_bundled()


@pytest.fixture(scope="module")
def define(tmp_path_factory: pytest.TempPathFactory, protocols: ProtocolFile) -> Path:
    path = tmp_path_factory.mktemp("define") / "define.xml"
    return write_define(datasets(), protocols=protocols, created=CREATED, context="Other", path=path)


@pytest.fixture(scope="module")
def tree(define: Path) -> etree._ElementTree:
    return etree.parse(str(define))


def item_def(tree: etree._ElementTree, oid: str) -> etree._Element:
    found = tree.xpath(f"//odm:ItemDef[@OID='{oid}']", namespaces=NS)
    assert len(found) == 1, oid
    return found[0]


def item_ref(tree: etree._ElementTree, group: str, oid: str) -> etree._Element:
    found = tree.xpath(f"//odm:ItemGroupDef[@OID='{group}']/odm:ItemRef[@ItemOID='{oid}']", namespaces=NS)
    assert len(found) == 1, oid
    return found[0]


def test_define_validates_against_the_define_xml_2_1_schema_shipped_with_odmlib(define: Path) -> None:
    schema = xmlschema.XMLSchema(schema_manager.get_schema_path("define", "2.1"))
    errors = [f"{e.path}: {e.reason}" for e in schema.iter_errors(str(define))]
    assert errors == []


def test_odmlib_define_loader_reads_every_dataset_back(define: Path) -> None:
    reader = loader.ODMLoader(define_loader.XMLDefineLoader(model_package="define_2_1", ns_uri=NS["def"]))
    reader.open_odm_document(str(define))
    odm = reader.root()
    assert odm.Context == "Other"
    assert odm.CreationDateTime == CREATED.isoformat()
    mdv = reader.MetaDataVersion()
    assert mdv.DefineVersion == "2.1.0"
    assert [g.Name for g in mdv.ItemGroupDef] == ["DM", "AE", "SUPPAE", "TR", "RS", "EX"]
    assert [s.Name for s in mdv.Standards.Standard] == ["SDTMIG", "CDISC/NCI"]


def test_every_item_ref_has_an_item_def(tree: etree._ElementTree) -> None:
    defined = set(tree.xpath("//odm:ItemDef/@OID", namespaces=NS))
    referenced = set(tree.xpath("//odm:ItemRef/@ItemOID", namespaces=NS))
    assert referenced and referenced <= defined


def test_every_codelist_ref_has_a_codelist(tree: etree._ElementTree) -> None:
    defined = set(tree.xpath("//odm:CodeList/@OID", namespaces=NS))
    referenced = set(tree.xpath("//odm:CodeListRef/@CodeListOID", namespaces=NS))
    assert referenced == {"CL.SEX", "CL.NY", "CL.TRTESTCD"}
    assert referenced <= defined


def test_every_method_oid_has_a_method_def_with_a_python_expression(tree: etree._ElementTree) -> None:
    defined = {m.get("OID"): m for m in tree.xpath("//odm:MethodDef", namespaces=NS)}
    referenced = set(tree.xpath("//odm:ItemRef/@MethodOID", namespaces=NS))
    assert {"MT.AGE", "MT.AESER", "MT.STUDYDAY", "MT.SUMDIAM", "MT.OVRLRESP"} <= referenced
    assert referenced <= set(defined)
    for method in defined.values():
        expression = method.find("odm:FormalExpression", NS)
        assert expression is not None and expression.get("Context") == "Python"
        assert expression.text.startswith("abscopal.")


def test_every_comment_oid_has_a_comment_def(tree: etree._ElementTree) -> None:
    assert item_def(tree, "IT.DM.RFSTDTC").get("{" + NS["def"] + "}CommentOID") == "COM.DM.RFSTDTC"
    comment = tree.xpath("//def:CommentDef[@OID='COM.DM.RFSTDTC']//odm:TranslatedText/text()", namespaces=NS)
    assert comment == ["Date of the first RT fraction."]


def test_text_length_is_the_longest_value_in_bytes(tree: etree._ElementTree) -> None:
    assert item_def(tree, "IT.DM.USUBJID").get("Length") == str(len(f"{S}-QFS-000003"))
    assert item_def(tree, "IT.AE.AETERM").get("Length") == str(len("Pneumonitis"))
    assert item_def(tree, "IT.DM.SEX").get("Length") == "1"


def test_length_is_at_least_one_for_a_column_without_values(tree: etree._ElementTree) -> None:
    assert item_def(tree, "IT.EX.EXTRT").get("Length") == "1"


@pytest.mark.parametrize(
    ("oid", "data_type"),
    [
        ("IT.DM.AGE", "integer"),  # 61, 7, 58
        ("IT.TR.TRSTRESN", "float"),  # 23.5, 123.5
        ("IT.DM.RFSTDTC", "date"),
        ("IT.DM.USUBJID", "text"),
    ],
)
def test_data_type_follows_the_values_and_the_spec_type(tree: etree._ElementTree, oid: str, data_type: str) -> None:
    assert item_def(tree, oid).get("DataType") == data_type


def test_integer_length_is_the_most_digits_and_float_keeps_its_decimals(tree: etree._ElementTree) -> None:
    assert item_def(tree, "IT.DM.AGE").get("Length") == "2"
    stresn = item_def(tree, "IT.TR.TRSTRESN")
    assert (stresn.get("Length"), stresn.get("SignificantDigits")) == ("5", "1")  # "123.5"


def test_key_sequence_follows_the_spec_keys(tree: etree._ElementTree) -> None:
    refs = tree.xpath("//odm:ItemGroupDef[@OID='IG.AE']/odm:ItemRef[@KeySequence]", namespaces=NS)
    by_sequence = sorted(refs, key=lambda r: int(r.get("KeySequence")))
    assert [r.get("ItemOID") for r in by_sequence] == [f"IT.AE.{k}" for k in AE.keys]


def test_mandatory_is_yes_exactly_for_required_variables(tree: etree._ElementTree) -> None:
    assert item_ref(tree, "IG.DM", "IT.DM.SEX").get("Mandatory") == "Yes"
    assert item_ref(tree, "IG.DM", "IT.DM.AGE").get("Mandatory") == "No"


def test_an_empty_dataset_has_no_data_and_the_others_do(tree: etree._ElementTree) -> None:
    flagged = tree.xpath("//odm:ItemGroupDef[@def:HasNoData='Yes']/@Name", namespaces=NS)
    assert flagged == ["EX"]


def test_each_dataset_names_its_leaf_file_structure_and_class(tree: etree._ElementTree) -> None:
    (group,) = tree.xpath("//odm:ItemGroupDef[@OID='IG.SUPPAE']", namespaces=NS)
    assert group.get("Domain") == "AE" and group.get("Purpose") == "Tabulation"
    assert group.get("{" + NS["def"] + "}Structure") == SUPPAE.structure
    assert group.find("def:Class", NS).get("Name") == "RELATIONSHIP"
    leaf = group.find("def:leaf", NS)
    assert leaf.get("{http://www.w3.org/1999/xlink}href") == "suppae.xpt"


def test_tr_value_level_where_clauses_name_the_test_codes_present(tree: etree._ElementTree) -> None:
    refs = tree.xpath("//def:ValueListDef[@OID='VL.TR.TRSTRESN']/odm:ItemRef", namespaces=NS)
    values = []
    for ref in refs:
        wc = ref.find("def:WhereClauseRef", NS).get("WhereClauseOID")
        (check,) = tree.xpath(f"//def:WhereClauseDef[@OID='{wc}']/odm:RangeCheck", namespaces=NS)
        assert check.get("{" + NS["def"] + "}ItemOID") == "IT.TR.TRTESTCD"
        values.append(check.findtext("odm:CheckValue", namespaces=NS))
    assert values == ["LDIAM", "SUMDIAM"]
    assert item_def(tree, "IT.TR.TRSTRESN").find("def:ValueListRef", NS).get("ValueListOID") == "VL.TR.TRSTRESN"


def test_a_derived_sum_of_diameters_is_described_by_its_method(tree: etree._ElementTree) -> None:
    (ref,) = tree.xpath(
        "//def:ValueListDef[@OID='VL.TR.TRSTRESN']/odm:ItemRef[@ItemOID='IT.TR.TRSTRESN.SUMDIAM']", namespaces=NS
    )
    assert ref.get("MethodOID") == "MT.SUMDIAM"
    assert item_def(tree, "IT.TR.TRSTRESN.SUMDIAM").find("def:Origin", NS).get("Type") == "Derived"


def test_rs_value_level_selects_by_category_and_test_code(tree: etree._ElementTree) -> None:
    selected = []
    for wc in tree.xpath(
        "//def:ValueListDef[@OID='VL.RS.RSSTRESC']//def:WhereClauseRef/@WhereClauseOID", namespaces=NS
    ):
        checks = tree.xpath(f"//def:WhereClauseDef[@OID='{wc}']/odm:RangeCheck", namespaces=NS)
        selected.append(tuple(c.findtext("odm:CheckValue", namespaces=NS) for c in checks))
    assert selected == [("RECIST 1.1", "OVRLRESP"), ("iRECIST", "OVRLRESP")]


def test_investigator_response_is_collected_and_sponsor_response_derived(tree: etree._ElementTree) -> None:
    investigator = item_def(tree, "IT.RS.RSSTRESC.RECIST_1.1.OVRLRESP").find("def:Origin", NS)
    sponsor = item_def(tree, "IT.RS.RSSTRESC.iRECIST.OVRLRESP").find("def:Origin", NS)
    assert (investigator.get("Type"), investigator.get("Source")) == ("Collected", "Investigator")
    assert sponsor.get("Type") == "Derived"


def test_supp_qval_value_level_where_clauses_name_the_qnams_present(tree: etree._ElementTree) -> None:
    checks = tree.xpath("//def:WhereClauseDef[starts-with(@OID, 'WC.SUPPAE.')]//odm:CheckValue/text()", namespaces=NS)
    assert sorted(checks) == ["AEIRAE", "AERELCF"]
    assert item_def(tree, "IT.SUPPAE.QVAL.AERELCF").get("Length") == str(len("PROBABLE"))


def test_codelists_enumerate_the_values_present_with_their_c_codes(tree: etree._ElementTree) -> None:
    (sex,) = tree.xpath("//odm:CodeList[@OID='CL.SEX']", namespaces=NS)
    terms = {i.get("CodedValue"): i.find("odm:Alias", NS).get("Name") for i in sex.findall("odm:EnumeratedItem", NS)}
    assert terms == {"F": "C16576", "M": "C20197"}  # NCI codes of CT codelist C66731
    assert sex.find("odm:Alias", NS).get("Name") == "C66731"


def test_a_sponsor_codelist_term_has_no_c_code(tree: etree._ElementTree) -> None:
    (trtestcd,) = tree.xpath("//odm:CodeList[@OID='CL.TRTESTCD']", namespaces=NS)
    items = trtestcd.findall("odm:EnumeratedItem", NS)
    assert [i.get("CodedValue") for i in items] == ["LDIAM", "SUMDIAM"]
    assert all(i.find("odm:Alias", NS) is None for i in items)


def test_a_term_outside_a_ct_codelist_is_an_extended_value(protocols: ProtocolFile, tmp_path: Path) -> None:
    rows = [{**DM_ROWS[0], "SEX": "INTERSEX"}]
    path = write_define(
        [Dataset(DM, rows)], protocols=protocols, created=CREATED, context="Other", path=tmp_path / "define.xml"
    )
    (item,) = etree.parse(str(path)).xpath("//odm:CodeList[@OID='CL.SEX']/odm:EnumeratedItem", namespaces=NS)
    assert item.get("{" + NS["def"] + "}ExtendedValue") == "Yes"


def test_submission_context_is_refused_while_a_term_lacks_a_c_code(protocols: ProtocolFile, tmp_path: Path) -> None:
    path = tmp_path / "define.xml"
    with pytest.raises(ValidationError, match=r"TRTESTCD 'LDIAM'"):
        write_define(datasets(), protocols=protocols, created=CREATED, context="Submission", path=path)
    assert not path.exists()


def test_submission_context_is_written_when_every_term_has_a_c_code(protocols: ProtocolFile, tmp_path: Path) -> None:
    path = write_define(
        [Dataset(DM, DM_ROWS)], protocols=protocols, created=CREATED, context="Submission", path=tmp_path / "define.xml"
    )
    assert etree.parse(str(path)).getroot().get("{" + NS["def"] + "}Context") == "Submission"


def test_same_datasets_and_creation_time_give_identical_bytes(protocols: ProtocolFile, tmp_path: Path) -> None:
    first = write_define(datasets(), protocols=protocols, created=CREATED, context="Other", path=tmp_path / "a.xml")
    second = write_define(datasets(), protocols=protocols, created=CREATED, context="Other", path=tmp_path / "b.xml")
    assert first.read_bytes() == second.read_bytes()


def test_the_leaf_format_names_the_dataset_files(protocols: ProtocolFile, tmp_path: Path) -> None:
    path = write_define(
        [Dataset(DM, DM_ROWS)],
        protocols=protocols,
        created=CREATED,
        context="Other",
        leaf_format="csv",
        path=tmp_path / "define.xml",
    )
    hrefs = etree.parse(str(path)).xpath(
        "//def:leaf/@xlink:href", namespaces={**NS, "xlink": "http://www.w3.org/1999/xlink"}
    )
    assert hrefs == ["dm.csv"]


def test_html_rendering_lists_datasets_variables_codelists_and_methods(define: Path, tmp_path: Path) -> None:
    html = write_define_html(define, tmp_path / "define.html").read_text(encoding="utf-8")
    for expected in ("Demographics", "USUBJID", "C66731", "MT.SUMDIAM", "LDIAM", "Date of the first RT fraction."):
        assert expected in html
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org", "")


def test_an_empty_findings_dataset_has_no_value_list_and_still_validates(
    protocols: ProtocolFile, tmp_path: Path
) -> None:
    path = write_define(
        [Dataset(DM, DM_ROWS), Dataset(TR, [])],
        protocols=protocols,
        created=CREATED,
        context="Other",
        path=tmp_path / "define.xml",
    )
    tree = etree.parse(str(path))
    assert tree.xpath("//def:ValueListDef", namespaces=NS) == []
    assert "CL.TRTESTCD" not in tree.xpath("//odm:CodeListRef/@CodeListOID", namespaces=NS)  # nothing to enumerate
    schema = xmlschema.XMLSchema(schema_manager.get_schema_path("define", "2.1"))
    assert [e.reason for e in schema.iter_errors(str(path))] == []
