"""A reviewer's HTML page of a define.xml 2.1: datasets, variables, value-level metadata, codelists, methods.

Read back from the XML file (so the page shows what was written), rendered with Jinja2; no JavaScript, no CDN.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from lxml import etree

from abscopal.errors import ValidationError

NS = {
    "odm": "http://www.cdisc.org/ns/odm/v1.3",
    "def": "http://www.cdisc.org/ns/def/v2.1",
    "xlink": "http://www.w3.org/1999/xlink",
}
_DEF = "{" + NS["def"] + "}"


def _text(elem: etree._Element | None) -> str:
    if elem is None:
        return ""
    found = elem.xpath("./odm:Description/odm:TranslatedText/text()", namespaces=NS)
    return str(found[0]) if found else ""


@dataclass
class Row:
    """One variable (or value-level slice) as the page shows it."""

    order: str
    name: str
    label: str
    data_type: str
    length: str
    mandatory: str
    key: str
    codelist: str
    origin: str
    method: str
    comment: str
    where: str = ""
    value_list: str = ""


@dataclass
class Group:
    oid: str
    name: str
    label: str
    klass: str
    structure: str
    leaf: str
    has_no_data: bool
    rows: list[Row] = field(default_factory=list)


def _origin(item: etree._Element) -> str:
    parts = []
    for o in item.findall("def:Origin", NS):
        parts.append(" ".join(x for x in (o.get("Type", ""), o.get("Source", "")) if x))
    return "; ".join(parts)


def read_define(path: Path) -> dict[str, object]:
    """What the page shows, read from ``path`` with lxml (a file that is not define.xml is refused)."""
    try:
        tree = etree.parse(str(path))
    except (OSError, etree.XMLSyntaxError) as exc:
        raise ValidationError(str(path), f"is not a readable define.xml ({exc})") from None
    mdvs = tree.xpath("//odm:MetaDataVersion", namespaces=NS)
    if not mdvs:
        raise ValidationError(str(path), "has no MetaDataVersion: it is not a define.xml")
    mdv = mdvs[0]
    items = {i.get("OID"): i for i in mdv.findall("odm:ItemDef", NS)}
    comments = {c.get("OID"): _text(c) for c in mdv.findall("def:CommentDef", NS)}
    wheres: dict[str, str] = {}
    for wc in mdv.findall("def:WhereClauseDef", NS):
        conds = []
        for rc in wc.findall("odm:RangeCheck", NS):
            target = items.get(rc.get(_DEF + "ItemOID"))
            name = target.get("Name") if target is not None else rc.get(_DEF + "ItemOID")
            values = ", ".join(v.text or "" for v in rc.findall("odm:CheckValue", NS))
            conds.append(f"{name} {rc.get('Comparator')} {values}")
        wheres[wc.get("OID", "")] = " and ".join(conds)

    def row(ref: etree._Element, item: etree._Element, where: str = "") -> Row:
        cl = item.find("odm:CodeListRef", NS)
        vl = item.find("def:ValueListRef", NS)
        return Row(
            order=ref.get("OrderNumber", ""),
            name=item.get("Name", ""),
            label=_text(item),
            data_type=item.get("DataType", ""),
            length=item.get("Length", ""),
            mandatory=ref.get("Mandatory", ""),
            key=ref.get("KeySequence", ""),
            codelist=cl.get("CodeListOID", "") if cl is not None else "",
            origin=_origin(item),
            method=ref.get("MethodOID", ""),
            comment=comments.get(item.get(_DEF + "CommentOID", ""), ""),
            where=where,
            value_list=vl.get("ValueListOID", "") if vl is not None else "",
        )

    groups = []
    for g in mdv.findall("odm:ItemGroupDef", NS):
        klass = g.find("def:Class", NS)
        leaf = g.find("def:leaf", NS)
        group = Group(
            oid=g.get("OID", ""),
            name=g.get("Name", ""),
            label=_text(g),
            klass=klass.get("Name", "") if klass is not None else "",
            structure=g.get(_DEF + "Structure", ""),
            leaf=leaf.get("{" + NS["xlink"] + "}href", "") if leaf is not None else "",
            has_no_data=g.get(_DEF + "HasNoData") == "Yes",
        )
        for ref in g.findall("odm:ItemRef", NS):
            item = items.get(ref.get("ItemOID"))
            if item is not None:
                group.rows.append(row(ref, item))
        groups.append(group)
    value_lists = []
    for vl in mdv.findall("def:ValueListDef", NS):
        rows = []
        for ref in vl.findall("odm:ItemRef", NS):
            item = items.get(ref.get("ItemOID"))
            wcr = ref.find("def:WhereClauseRef", NS)
            where = wheres.get(wcr.get("WhereClauseOID", ""), "") if wcr is not None else ""
            if item is not None:
                rows.append(row(ref, item, where))
        value_lists.append({"oid": vl.get("OID"), "rows": rows})
    codelists = []
    for cl in mdv.findall("odm:CodeList", NS):
        alias = cl.find("odm:Alias", NS)
        ext = cl.find("odm:ExternalCodeList", NS)
        terms = [
            {
                "value": t.get("CodedValue"),
                "code": a.get("Name") if (a := t.find("odm:Alias", NS)) is not None else "",
                "extended": t.get(_DEF + "ExtendedValue") == "Yes",
            }
            for t in cl.findall("odm:EnumeratedItem", NS)
        ]
        codelists.append(
            {
                "oid": cl.get("OID"),
                "name": cl.get("Name"),
                "code": alias.get("Name") if alias is not None else "",
                "external": f"{ext.get('Dictionary')} {ext.get('Version')}" if ext is not None else "",
                "terms": terms,
            }
        )
    methods = [
        {
            "oid": m.get("OID"),
            "name": m.get("Name"),
            "type": m.get("Type"),
            "description": _text(m),
            "expression": " ".join(m.xpath("./odm:FormalExpression/text()", namespaces=NS)),
        }
        for m in mdv.findall("odm:MethodDef", NS)
    ]
    standards = [
        {"name": s.get("Name"), "type": s.get("Type"), "version": s.get("Version")}
        for s in mdv.xpath("./def:Standards/def:Standard", namespaces=NS)
    ]
    root = tree.getroot()
    return {
        "study": " ".join(tree.xpath("//odm:GlobalVariables/odm:StudyName/text()", namespaces=NS)),
        "description": " ".join(tree.xpath("//odm:GlobalVariables/odm:StudyDescription/text()", namespaces=NS)),
        "created": root.get("CreationDateTime", ""),
        "context": root.get(_DEF + "Context", ""),
        "define_version": mdv.get(_DEF + "DefineVersion", ""),
        "standards": standards,
        "groups": groups,
        "value_lists": value_lists,
        "codelists": codelists,
        "methods": methods,
    }


def write_define_html(define_path: Path | str, html_path: Path | str) -> Path:
    """Render ``define_path`` as a self-contained HTML page at ``html_path``; returns the path."""
    env = Environment(
        loader=PackageLoader("abscopal.interop.define", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    page = env.get_template("define.html.j2").render(**read_define(Path(define_path)))
    out = Path(html_path)
    out.write_text(page, encoding="utf-8", newline="\n")
    return out
