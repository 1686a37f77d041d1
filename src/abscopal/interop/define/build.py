"""define.xml 2.1 for SDTM datasets, built with odmlib's ``define_2_1`` model (interop.md §3).

Everything comes from the :class:`~abscopal.interop.sdtm.spec.DatasetSpec` of each dataset and the rows
present: ItemGroupDefs, ItemRefs (Mandatory from core Req, KeySequence from ``spec.keys``), ItemDefs (DataType
and Length from the values: Length = the XPT width, the longest value in bytes), value-level metadata for the
result variables of the findings (by their test code), MethodDefs for derived values, CodeLists enumerated from
the values present, and CommentDefs. Same datasets + ``created`` -> identical bytes.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import odmlib.define_2_1.model as DEF
import odmlib.ns_registry as NS

from abscopal import __version__
from abscopal.errors import ValidationError
from abscopal.interop.define.ct import CODELISTS, CT_PACKAGE, CtPackage, codelist_key
from abscopal.interop.define.methods import METHODS, Method, implied_method, method_key
from abscopal.interop.sdtm.spec import Dataset, DatasetSpec, Value, Variable
from abscopal.protocol.model import ProtocolFile

Context = Literal["Submission", "Other"]
ItemDataType = Literal["text", "integer", "float", "date", "datetime"]

ODM_NS = "http://www.cdisc.org/ns/odm/v1.3"
DEF_NS = "http://www.cdisc.org/ns/def/v2.1"
XLINK_NS = "http://www.w3.org/1999/xlink"

#: dataset -> (the variables that select a value-level row, the result variables described per row)
VALUE_LEVEL: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "TR": (("TRTESTCD",), ("TRORRES", "TRSTRESC", "TRSTRESN")),
    "RS": (("RSCAT", "RSTESTCD"), ("RSSTRESC",)),
    "QS": (("QSTESTCD",), ("QSSTRESN",)),
    "LB": (("LBTESTCD",), ("LBORRES", "LBSTRESN")),
    "EX": (("EXCAT",), ("EXDOSE",)),
    "TS": (("TSPARMCD",), ("TSVAL",)),
}
SUPP_VALUE_LEVEL = (("QNAM",), ("QVAL",))

#: codelists defined by an external dictionary, not enumerated (interop.md §3)
EXTERNAL_CODELISTS: dict[str, tuple[str, str]] = {
    "MEDDRA": ("MedDRA", "20.1"),
    "ISO3166": ("ISO 3166-1 alpha-3", "2020"),
    "COUNTRY": ("ISO 3166-1 alpha-3", "2020"),
}

_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
_OID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class ColumnType:
    """What define.xml says of one column (or one value-level slice of it)."""

    data_type: ItemDataType
    length: int | None
    significant_digits: int | None = None


def _is_null(value: Value) -> bool:
    return value is None or value == ""


def _number(value: Value) -> float | int:
    if isinstance(value, int | float):
        return value
    text = str(value)
    try:
        return int(text)
    except ValueError:
        return float(text)


def _float_text(value: float | int) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def column_type(variable: Variable, values: Iterable[Value]) -> ColumnType:
    """DataType and Length of ``variable`` over ``values`` (nulls ignored).

    Char: date / datetime for --DTC (ISO 8601, with a ``T`` -> datetime), else text with Length = the longest
    value in UTF-8 bytes (the XPT width, ≥ 1). Num: integer when every value is whole, else float with
    SignificantDigits = the most decimals; Length = the most characters of the shortest representation.
    """
    present = [v for v in values if not _is_null(v)]
    if variable.type == "Num":
        numbers = [_number(v) for v in present]
        texts = [_float_text(n) for n in numbers]
        length = max((len(t) for t in texts), default=1) or 1
        if all(isinstance(n, int) or float(n).is_integer() for n in numbers):
            return ColumnType("integer", length)
        decimals = max(len(t.partition(".")[2]) for t in texts)
        return ColumnType("float", length, decimals)
    texts = [str(v) for v in present]
    if variable.name.endswith("DTC"):
        if any("T" in t for t in texts):
            return ColumnType("datetime", None)
        if all(_DATE.match(t) for t in texts):
            return ColumnType("date", None)
    return ColumnType("text", max((len(t.encode("utf-8")) for t in texts), default=1) or 1)


def value_class(variable: Variable, value: Value) -> Hashable:
    """What :func:`column_type` reads of one value of ``variable``: values of one class are interchangeable there
    (null; Num: the shortest text's length, whether whole, its decimals; Char: UTF-8 length, and for --DTC whether
    it holds a ``T`` and is an ISO date), so a column reduced to one value per class has the same ColumnType."""
    if _is_null(value):
        return None
    if variable.type == "Num":
        number = _number(value)
        text = _float_text(number)
        whole = isinstance(number, int) or float(number).is_integer()
        return (len(text), whole, len(text.partition(".")[2]))
    text = str(value)
    if variable.name.endswith("DTC"):
        return (len(text.encode("utf-8")), "T" in text, _DATE.match(text) is not None)
    return len(text.encode("utf-8"))


#: variables whose every distinct value define.xml reads per value-level slice (not only their ColumnType)
SLICE_READS = ("QSDRVFL", "RSEVAL")


def _oid(*parts: str) -> str:
    return ".".join(_OID_UNSAFE.sub("_", p) for p in parts)


def _text(text: str) -> DEF.Description:
    return DEF.Description(TranslatedText=[DEF.TranslatedText(_content=text, lang="en")])


def _parent_domain(spec: DatasetSpec) -> str:
    if spec.name.startswith("SUPP") and len(spec.name) > 4:
        return spec.name[4:]
    return spec.name


def _value_level(spec: DatasetSpec) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    selectors, results = SUPP_VALUE_LEVEL if spec.name.startswith("SUPP") else VALUE_LEVEL.get(spec.name, ((), ()))
    if not selectors or not all(s in spec.names for s in selectors):
        return None
    present = tuple(r for r in results if r in spec.names)
    return (selectors, present) if present else None


def _origin(variable: Variable, spec: DatasetSpec, source: str | None = None) -> DEF.Origin:
    if variable.origin == "Collected":
        who = source or ("Subject" if _parent_domain(spec) == "QS" else "Investigator")
        return DEF.Origin(Type="Collected", Source=who)
    if variable.origin == "Predecessor":
        return DEF.Origin(Type="Predecessor", Description=_text("Copied from the source record's value."))
    if variable.origin == "Protocol":
        return DEF.Origin(Type="Protocol")
    return DEF.Origin(Type=variable.origin, Source="Sponsor")


class _Builder:
    """Collects the definitions of one define.xml while walking the datasets (OIDs from names)."""

    def __init__(self, ct_package: CtPackage) -> None:
        self.ct = ct_package
        self.item_defs: list[DEF.ItemDef] = []
        self.value_lists: list[DEF.ValueListDef] = []
        self.where_clauses: dict[str, DEF.WhereClauseDef] = {}
        self.comments: dict[str, DEF.CommentDef] = {}
        self.methods: dict[str, Method] = {}
        self.codelist_terms: dict[str, set[str]] = {}
        self.codelist_numeric: dict[str, bool] = {}
        self.codelist_users: dict[str, list[DEF.ItemDef]] = {}

    def method_oid(self, name: str) -> str:
        key = method_key(name)
        if key not in self.methods:
            self.methods[key] = METHODS.get(key) or Method(
                key, f"Derivation {key} as documented in docs/interop.md.", "abscopal.interop.sdtm"
            )
        return _oid("MT", key)

    def codelist_oid(self, variable: Variable, values: Iterable[Value]) -> str:
        assert variable.codelist is not None
        key = codelist_key(variable.codelist)
        terms = self.codelist_terms.setdefault(key, set())
        numeric = variable.type == "Num"
        self.codelist_numeric[key] = self.codelist_numeric.get(key, True) and numeric
        for v in values:
            if not _is_null(v):
                terms.add(_float_text(_number(v)) if numeric else str(v))
        return _oid("CL", key)

    def comment_oid(self, dataset: str, variable: Variable) -> str:
        assert variable.comment is not None
        oid = _oid("COM", dataset, variable.name)
        self.comments[oid] = DEF.CommentDef(OID=oid, Description=_text(variable.comment))
        return oid

    def dataset(self, ds: Dataset) -> DEF.ItemGroupDef:
        spec = ds.spec
        name = spec.name
        leaf_id = _oid("LF", name)
        group = DEF.ItemGroupDef(
            OID=_oid("IG", name),
            Name=name,
            Repeating="No" if name == "DM" or spec.domain_class == "TRIAL DESIGN" else "Yes",
            IsReferenceData="Yes" if spec.domain_class == "TRIAL DESIGN" else "No",
            SASDatasetName=name,
            Domain=_parent_domain(spec),
            Purpose="Tabulation",
            Structure=spec.structure,
            ArchiveLocationID=leaf_id,
            StandardOID="STD.SDTMIG",
            Description=_text(spec.label),
        )
        if not ds.rows:
            group.HasNoData = "Yes"
        vlm = _value_level(spec)
        for order, variable in enumerate(spec.variables, start=1):
            values = [row.get(variable.name) for row in ds.rows]
            item_oid = _oid("IT", name, variable.name)
            ref = DEF.ItemRef(ItemOID=item_oid, OrderNumber=order, Mandatory="Yes" if variable.core == "Req" else "No")
            if variable.name in spec.keys:
                ref.KeySequence = spec.keys.index(variable.name) + 1
            method = variable.method or (
                implied_method(_parent_domain(spec), variable.name) if variable.origin == "Derived" else None
            )
            if method:
                ref.MethodOID = self.method_oid(method)
            group.ItemRef.append(ref)
            item = self.item_def(spec, variable, item_oid, values)
            self.item_defs.append(item)
            if vlm and variable.name in vlm[1] and (vl_oid := self.value_list(ds, variable, vlm[0])):
                item.ValueListRef = DEF.ValueListRef(ValueListOID=vl_oid)
        group.Class = DEF.Class(Name=spec.domain_class)
        group.leaf = DEF.leaf(ID=leaf_id, href=self.leaf_name(name), title=DEF.title(_content=self.leaf_name(name)))
        return group

    leaf_format = "xpt"

    def leaf_name(self, name: str) -> str:
        return f"{name.lower()}.{self.leaf_format}"

    def item_def(
        self,
        spec: DatasetSpec,
        variable: Variable,
        oid: str,
        values: Sequence[Value],
        *,
        name: str | None = None,
        description: str | None = None,
        origin: Sequence[DEF.Origin] | None = None,
    ) -> DEF.ItemDef:
        kind = column_type(variable, values)
        item = DEF.ItemDef(
            OID=oid,
            Name=name or variable.name,
            DataType=kind.data_type,
            SASFieldName=variable.name,
            Description=_text(description or variable.label),
        )
        if kind.length is not None:
            item.Length = kind.length
        if kind.significant_digits is not None:
            item.SignificantDigits = kind.significant_digits
        if variable.comment:
            item.CommentOID = self.comment_oid(spec.name, variable)
        if variable.codelist:
            oid = self.codelist_oid(variable, values)  # the reference is set once the codelist is known to exist
            self.codelist_users.setdefault(oid, []).append(item)
        item.Origin = list(origin) if origin else [_origin(variable, spec)]
        return item

    def value_list(self, ds: Dataset, variable: Variable, selectors: tuple[str, ...]) -> str | None:
        """One ValueListDef for ``variable``: a row per combination of selector values present (None if none)."""
        spec = ds.spec
        slices: dict[tuple[str, ...], list[Mapping[str, Value]]] = {}
        for row in ds.rows:
            key = tuple("" if _is_null(row.get(s)) else str(row.get(s)) for s in selectors)
            if all(key):
                slices.setdefault(key, []).append(row)
        if not slices:
            return None
        vl_oid = _oid("VL", spec.name, variable.name)
        value_list = DEF.ValueListDef(OID=vl_oid)
        for order, key in enumerate(sorted(slices), start=1):
            rows = slices[key]
            suffix = ".".join(key)
            wc_oid = _oid("WC", spec.name, *(f"{s}.{v}" for s, v in zip(selectors, key, strict=True)))
            self.where_clauses[wc_oid] = DEF.WhereClauseDef(
                OID=wc_oid,
                RangeCheck=[
                    DEF.RangeCheck(
                        Comparator="EQ",
                        SoftHard="Soft",
                        ItemOID=_oid("IT", spec.name, s),
                        CheckValue=[DEF.CheckValue(_content=v)],
                    )
                    for s, v in zip(selectors, key, strict=True)
                ],
            )
            test = key[-1]
            method = self._slice_method(spec, test, rows)
            origins = self._slice_origins(spec, variable, rows, method)
            item_oid = _oid("IT", spec.name, variable.name, suffix)
            values = [r.get(variable.name) for r in rows]
            self.item_defs.append(
                self.item_def(
                    spec,
                    variable,
                    item_oid,
                    values,
                    name=f"{variable.name}.{suffix}",
                    description=f"{variable.label} ({' '.join(key)})",
                    origin=origins,
                )
            )
            ref = DEF.ItemRef(
                ItemOID=item_oid,
                OrderNumber=order,
                Mandatory="No",
                WhereClauseRef=[DEF.WhereClauseRef(WhereClauseOID=wc_oid)],
            )
            if method:
                ref.MethodOID = self.method_oid(method)
            value_list.ItemRef.append(ref)
        self.value_lists.append(value_list)
        return vl_oid

    def _slice_method(self, spec: DatasetSpec, test: str, rows: Sequence[Mapping[str, Value]]) -> str | None:
        domain = _parent_domain(spec)
        if domain == "QS":
            return "QSSCALE" if any(r.get("QSDRVFL") == "Y" for r in rows) else None
        if domain in ("TR", "RS") and test in METHODS:
            if domain == "RS" and all(r.get("RSEVAL") == "INVESTIGATOR" for r in rows):
                return None
            return test
        return None

    def _slice_origins(
        self, spec: DatasetSpec, variable: Variable, rows: Sequence[Mapping[str, Value]], method: str | None
    ) -> list[DEF.Origin]:
        if spec.name == "RS" and "RSEVAL" in spec.names:
            evaluators = {str(r.get("RSEVAL") or "") for r in rows}
            out = []
            if "INVESTIGATOR" in evaluators:
                out.append(DEF.Origin(Type="Collected", Source="Investigator"))
            if method:
                out.append(DEF.Origin(Type="Derived", Source="Sponsor"))
            return out or [_origin(variable, spec)]
        if method:
            return [DEF.Origin(Type="Derived", Source="Sponsor")]
        if spec.name == "QS":
            return [DEF.Origin(Type="Collected", Source="Subject")]
        return [_origin(variable, spec)]

    def codelists(self) -> tuple[list[DEF.CodeList], list[str]]:
        """The CodeLists referenced, each enumerated from the values present; and the terms lacking a C-code.

        Each ItemDef gets its CodeListRef here, once its codelist exists (a sponsor codelist without a value
        present has nothing to enumerate, so it is left out and not referenced).
        """
        out = self._codelists()
        for codelist in out[0]:
            for user in self.codelist_users.get(str(codelist.OID), []):
                user.CodeListRef = DEF.CodeListRef(CodeListOID=codelist.OID)
        return out

    def _codelists(self) -> tuple[list[DEF.CodeList], list[str]]:
        out: list[DEF.CodeList] = []
        missing: list[str] = []
        for key in sorted(self.codelist_terms):
            numeric = self.codelist_numeric[key]
            oid = _oid("CL", key)
            if key in EXTERNAL_CODELISTS:
                dictionary, version = EXTERNAL_CODELISTS[key]
                out.append(
                    DEF.CodeList(
                        OID=oid,
                        Name=key,
                        DataType="text",
                        ExternalCodeList=DEF.ExternalCodeList(Dictionary=dictionary, Version=version),
                    )
                )
                continue
            ct = CODELISTS.get(key)
            codelist = DEF.CodeList(OID=oid, Name=ct.name if ct else key, DataType="integer" if numeric else "text")
            if ct:
                codelist.StandardOID = "STD.CT"
            present = self.codelist_terms[key] or set(ct.terms if ct else ())
            if not present:  # a sponsor codelist with no value anywhere: nothing to enumerate, so no reference
                continue
            terms = sorted(present, key=lambda t: (float(t), t) if numeric else (0.0, t))
            for order, term in enumerate(terms, start=1):
                item = DEF.EnumeratedItem(CodedValue=term, OrderNumber=order)
                code = ct.terms.get(term) if ct else None
                if code:
                    item.Alias = [DEF.Alias(Context="nci:ExtCodeID", Name=code)]
                else:
                    missing.append(f"{key} {term!r}")
                    if ct:
                        item.ExtendedValue = "Yes"
                codelist.EnumeratedItem.append(item)
            if ct:
                codelist.Alias = [DEF.Alias(Context="nci:ExtCodeID", Name=ct.code)]
            out.append(codelist)
        return out, missing

    def method_defs(self) -> list[DEF.MethodDef]:
        return [
            DEF.MethodDef(
                OID=_oid("MT", key),
                Name=m.name,
                Type=m.type,
                Description=_text(m.description),
                FormalExpression=[DEF.FormalExpression(Context="Python", _content=m.expression)],
            )
            for key, m in sorted(self.methods.items())
        ]


def _register_namespaces() -> None:
    """odmlib's namespace registry is process-global: set it for define.xml 2.1 before each serialisation."""
    NS.NamespaceRegistry(prefix="odm", uri=ODM_NS, is_default=True, is_reset=True)  # type: ignore[no-untyped-call]
    NS.NamespaceRegistry(prefix="def", uri=DEF_NS)  # type: ignore[no-untyped-call]
    NS.NamespaceRegistry(prefix="xlink", uri=XLINK_NS)  # type: ignore[no-untyped-call]


def build_define(
    datasets: Sequence[Dataset],
    *,
    protocols: ProtocolFile,
    created: dt.datetime,
    context: Context = "Submission",
    leaf_format: str = "xpt",
    ct_package: CtPackage | None = None,
) -> Any:
    """The define.xml 2.1 document (an odmlib ``ODM``) for ``datasets``.

    Context Submission is refused while a codelist term lacks an NCI C-code (interop.md §3).
    """
    if context not in ("Submission", "Other"):
        raise ValidationError("--context", f"{context!r} is not a define.xml context (Submission or Other)")
    if not datasets:
        raise ValidationError("datasets", "define.xml needs at least one dataset")
    protocol = protocols.current
    studyid = protocol.interop.studyid or protocol.trial.id
    package = ct_package or CtPackage(version=protocol.interop.ct_version)
    builder = _Builder(package)
    builder.leaf_format = leaf_format
    groups = [builder.dataset(ds) for ds in datasets]
    codelists, missing = builder.codelists()
    if context == "Submission" and missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise ValidationError(
            "--context",
            f"define.xml cannot be written for Submission while {len(missing)} codelist term(s) lack an NCI "
            f"C-code ({shown}); add the codes to abscopal.interop.define.ct or write with --context other",
        )
    sdtmig = protocol.interop.sdtmig_version
    mdv = DEF.MetaDataVersion(
        OID=_oid("MDV", studyid, "SDTMIG", sdtmig),
        Name=f"Study {studyid}, SDTM data definitions",
        Description=f"SDTMIG {sdtmig} datasets of {studyid} exported by Abscopal {__version__}",
        DefineVersion="2.1.0",
    )
    mdv.Standards = DEF.Standards(
        Standard=[
            DEF.Standard(OID="STD.SDTMIG", Name="SDTMIG", Type="IG", Version=sdtmig, Status="Final"),
            DEF.Standard(
                OID="STD.CT",
                Name=package.name,
                Type="CT",
                PublishingSet=package.publishing_set,
                Version=package.version,
                Status="Final",
            ),
        ]
    )
    mdv.ValueListDef = builder.value_lists
    mdv.WhereClauseDef = list(builder.where_clauses.values())
    mdv.ItemGroupDef = groups
    mdv.ItemDef = builder.item_defs
    mdv.CodeList = codelists
    mdv.MethodDef = builder.method_defs()
    mdv.CommentDef = [builder.comments[k] for k in sorted(builder.comments)]
    study = DEF.Study(
        OID=_oid("ST", studyid),
        GlobalVariables=DEF.GlobalVariables(
            StudyName=DEF.StudyName(_content=studyid),
            StudyDescription=DEF.StudyDescription(_content=protocol.trial.title),
            ProtocolName=DEF.ProtocolName(_content=studyid),
        ),
        MetaDataVersion=mdv,
    )
    return DEF.ODM(
        FileType="Snapshot",
        FileOID=_oid("DEF", studyid, "SDTM"),
        CreationDateTime=created.isoformat(),
        ODMVersion="1.3.2",
        Originator="Abscopal",
        SourceSystem="Abscopal",
        SourceSystemVersion=__version__,
        Context=context,
        Study=study,
    )


def write_define(
    datasets: Sequence[Dataset],
    *,
    protocols: ProtocolFile,
    created: dt.datetime,
    context: Context = "Submission",
    leaf_format: str = "xpt",
    path: Path | str,
    ct_package: CtPackage | None = None,
) -> Path:
    """Write define.xml 2.1 for ``datasets`` to ``path`` (nothing written when refused); returns the path."""
    document = build_define(
        datasets,
        protocols=protocols,
        created=created,
        context=context,
        leaf_format=leaf_format,
        ct_package=ct_package,
    )
    _register_namespaces()
    text = document.to_xml_string(xml_declaration=True)
    out = Path(path)
    out.write_bytes(text.encode("utf-8"))
    return out


__all__ = ["CT_PACKAGE", "SLICE_READS", "ColumnType", "build_define", "column_type", "value_class", "write_define"]
