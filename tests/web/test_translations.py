"""The zh-Hans catalog is complete and kept complete (web.md §8).

Every message Babel extracts from the web application (``babel.cfg``: its Python and Jinja2 templates) has a
Chinese translation in ``src/abscopal/web/locales/zh_Hans/LC_MESSAGES/messages.po`` or in one of the page areas'
catalogs beside it (merged as ``abscopal.web.i18n`` merges them), with the same placeholders
and no fuzzy entry; a zh_Hans user's pages are in Chinese. When a test here fails, run
``scripts/update-translations.sh`` and translate the new entries.
"""

from __future__ import annotations

import re
import sys
from functools import cache
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

sys.path.insert(0, str(Path(__file__).parent))
import world

from abscopal.web.forms import FIELD_LABELS, editable_fields
from abscopal.web.records import RESOURCES

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "src" / "abscopal" / "web"
CATALOG = WEB / "locales" / "zh_Hans" / "LC_MESSAGES" / "messages.po"
FIX = "run scripts/update-translations.sh and translate"
PLACEHOLDER = re.compile(r"%\(\w+\)[sdifr]|\{\w*\}")

Message = str | tuple[str, ...]


@cache
def extracted() -> dict[str, Message]:
    """Every message of the code and templates, by msgid (a plural's msgid is its singular)."""
    with (ROOT / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)  # type: ignore[no-untyped-call]

    def under_web(path: str) -> bool:  # only walk the directories that lead to, or are inside, the web package
        p = Path(path).resolve()
        return p == WEB or WEB in p.parents or p in WEB.parents

    found: dict[str, Message] = {}
    for _file, _line, message, _comments, _context in extract_from_dir(
        ROOT, method_map, options_map, keywords=DEFAULT_KEYWORDS, directory_filter=under_web
    ):
        key = message[0] if isinstance(message, tuple) else message
        if key:
            found[key] = message
    return found


@cache
def catalog() -> Catalog:
    """``messages.po`` and every area catalog beside it, merged the way ``abscopal.web.i18n`` merges them."""
    merged = Catalog(locale="zh_Hans", fuzzy=False)
    for po in sorted(CATALOG.parent.glob("*.po"), key=lambda p: (p.name != "messages.po", p.name)):
        with po.open("rb") as f:
            for message in read_po(f, locale="zh_Hans"):
                if message.id and not (merged.get(message.id) and merged[message.id].string):
                    merged[message.id] = message
    return merged


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(value) if isinstance(value, tuple | list) else (value or "",)


def test_the_extraction_finds_the_messages_of_the_code_and_the_templates() -> None:
    found = extracted()
    assert len(found) > 300
    assert {"Patients", "Dashboard", "Save", "Review the audit trail.", "Baseline diameter mm"} <= set(found)


def test_every_extracted_message_has_a_chinese_translation() -> None:
    cat = catalog()
    missing = []
    for key in sorted(extracted()):
        entry = cat.get(key)
        if entry is None or not all(s.strip() for s in _strings(entry.string)):
            missing.append(key)
    assert not missing, f"{len(missing)} message(s) without a zh_Hans translation ({FIX}): {missing}"


def test_every_translation_keeps_the_placeholders_of_its_message() -> None:
    wrong = []
    for entry in catalog():
        if not entry.id:
            continue
        ids = _strings(entry.id)
        expected = sorted(PLACEHOLDER.findall(ids[-1]))
        for text in _strings(entry.string):
            if sorted(PLACEHOLDER.findall(text)) != expected:
                wrong.append((ids[0], text))
    assert not wrong, f"translations whose placeholders differ from their msgid ({FIX}): {wrong}"


def test_the_catalog_has_no_fuzzy_entry() -> None:
    fuzzy = [entry.id for entry in catalog() if entry.id and entry.fuzzy]
    assert not catalog().fuzzy, "the catalog's header is marked fuzzy"
    assert not fuzzy, f"fuzzy entries: check and unmark them ({FIX}): {fuzzy}"


def test_the_catalog_header_names_the_language_and_its_plural_forms() -> None:
    cat = catalog()
    assert str(cat.locale) == "zh_Hans"
    assert cat.plural_forms == "nplurals=1; plural=0;"


def test_every_field_of_a_record_form_has_a_marked_label() -> None:
    unlabelled = sorted({f.name for res in RESOURCES.values() for f in editable_fields(res.cls)} - set(FIELD_LABELS))
    assert not unlabelled, f"add these fields to abscopal.web.forms.FIELD_LABELS ({FIX}): {unlabelled}"


def test_a_zh_hans_user_sees_the_pages_in_chinese(client: world.Clients) -> None:
    c = client.login("coordinator")
    english = c.get("/")
    assert english.status_code == 200
    assert '<html lang="en">' in english.text and ">Patients</a>" in english.text
    switched = c.post("/language", data={"language": "zh_Hans", "next": "/", "csrf_token": c.csrf})
    assert switched.status_code == 303
    try:
        page = c.get("/")
        assert page.status_code == 200
        assert '<html lang="zh-Hans">' in page.text
        assert ">受试者</a>" in page.text  # the nav's "Patients"
        assert ">工作台</a>" in page.text  # the nav's "Dashboard"
        assert ">Patients</a>" not in page.text
        assert "下一步工作" in page.text  # a heading of the template
        assert "回答您所在中心的未关闭数据质疑。" in page.text  # a next step, marked with N_() in Python
    finally:
        c.post("/language", data={"language": "en", "next": "/", "csrf_token": c.csrf})


def _in_chinese(clients: world.Clients, username: str) -> Any:
    c = clients.login(username)
    assert c.post("/language", data={"language": "zh_Hans", "next": "/", "csrf_token": c.csrf}).status_code == 303
    return c


def test_every_kind_of_page_renders_for_a_zh_hans_user(client: world.Clients) -> None:
    pages = {
        "datamanager": ["/", "/patients", f"/patients/{world.QFS_PATIENT}", "/queries", "/audit", "/profile"],
        "admin": ["/", "/admin/users", "/admin/users/new", "/admin/users/coordinator", "/admin/sites"],
    }
    for username, paths in pages.items():
        c = _in_chinese(client, username)
        try:
            for path in paths:
                page = c.get(path)
                assert page.status_code == 200, (username, path, page.status_code)
                assert '<html lang="zh-Hans">' in page.text, path
            records = re.findall(rf'href="(/patients/{world.QFS_PATIENT}/[\w-]+/[^"#/]+)"', c.get(paths[2]).text)
            if username == "datamanager":
                assert records, "the patient page lists records"
                for path in records[:5]:
                    page = c.get(path)
                    assert page.status_code == 200, path
                    assert "字段" in page.text and "数据质疑" in page.text, path
        finally:
            c.post("/language", data={"language": "en", "next": "/", "csrf_token": c.csrf})
