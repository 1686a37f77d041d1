"""Engine and service sentences as :class:`abscopal.messages.Message` (web.md §8): each is its English text,
character for character, keeps its template and params for the web to translate, and every template marked
with ``N_()`` outside the web package has a zh_Hans translation with the same placeholders."""

from __future__ import annotations

import ast
import datetime as dt
import pickle
import re
import string
from functools import cache
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

from abscopal import validation
from abscopal.domain import Role, Screening
from abscopal.errors import ValidationError
from abscopal.messages import Joined, Message, Term
from abscopal.services.common import ACTION_CONTEXT, Action, role_name
from abscopal.web.i18n import is_translated, translate

SRC = Path(__file__).resolve().parents[2] / "src" / "abscopal"
LC_MESSAGES = SRC / "web" / "locales" / "zh_Hans" / "LC_MESSAGES"
PURE = ("protocol", "response", "safety", "qol", "stats", "analysis")


def _users_of_messages() -> list[Path]:
    """The modules outside the web package that build messages (they import abscopal.messages)."""
    return sorted(
        p for p in SRC.rglob("*.py") if "web" not in p.relative_to(SRC).parts and "abscopal.messages" in p.read_text()
    )


@cache
def marked() -> dict[str, str]:
    """Every template marked with ``N_()`` in those modules -> where it is."""
    found: dict[str, str] = {}
    for path in _users_of_messages():
        for line, message, _comments, _context in extract_from_file("python", str(path), keywords={"N_": None}):
            assert isinstance(message, str)
            found[message] = f"{path.relative_to(SRC)}:{line}"
    return found


@cache
def chinese() -> dict[str, str]:
    """msgid -> msgstr of every zh_Hans catalog, merged as ``abscopal.web.i18n`` merges them (first one wins)."""
    merged: dict[str, str] = {}
    for po in sorted(LC_MESSAGES.glob("*.po"), key=lambda p: (p.name != "messages.po", p.name)):
        with po.open("rb") as f:
            for m in read_po(f, locale="zh_Hans"):
                if m.id and isinstance(m.id, str) and isinstance(m.string, str) and m.string and not m.fuzzy:
                    merged.setdefault(m.id, m.string)
    return merged


def _placeholders(template: str) -> list[str]:
    return sorted(name for _, name, _, _ in string.Formatter().parse(template) if name is not None)


def test_a_message_is_its_english_text() -> None:
    m = Message("{name} not recorded", name="ECOG performance status")
    assert m == "ECOG performance status not recorded"
    assert isinstance(m, str) and str(m) == "ECOG performance status not recorded"
    assert (m.template, dict(m.params)) == ("{name} not recorded", {"name": "ECOG performance status"})


def test_a_message_made_of_messages_is_the_english_text_of_its_parts() -> None:
    m = Message("{checks}: {status}", checks=Joined("; ", [Message("{name} complete", name="Data"), "x < 1"]),
                status=Message("met"))  # fmt: skip
    assert m == "Data complete; x < 1: met"


def test_a_message_survives_pickling_with_its_template() -> None:
    m = Message("{checks}: {status}", checks=Joined(", ", ["IN3", "IN6"]), status=Message("{x} {{braces}}", x="a"))
    back = pickle.loads(pickle.dumps(m))
    assert back == m and back.template == m.template and translate("zh_Hans", back) == translate("zh_Hans", m)


def test_the_web_translates_a_message_and_its_parts_with_the_values_filled_in() -> None:
    m = Message("{checks}: {status}", checks=Joined("; ", [Message("{name} not recorded", name="ECOG")]),
                status=Message("unknown (data missing)"))  # fmt: skip
    assert translate("zh_Hans", m) == "ECOG 未记录：未知（缺少数据）"
    assert is_translated("zh_Hans", m)


def test_an_english_page_gets_the_english_text_unchanged() -> None:
    m = Message("{name} not recorded", name="ECOG")
    assert translate("en", m) == "ECOG not recorded" and not is_translated("en", m)


def test_text_that_is_not_a_message_is_shown_as_it_is() -> None:
    assert translate("zh_Hans", "not recorded") == "not recorded"
    assert not is_translated("zh_Hans", "ECOG not recorded")


def test_a_template_without_a_translation_falls_back_to_english() -> None:
    m = Message("{name} is not in any catalog", name="x")
    assert translate("zh_Hans", m) == "x is not in any catalog" and not is_translated("zh_Hans", m)


def test_the_engines_mark_their_templates() -> None:
    found = marked()
    assert len(found) > 10
    assert {"{name} not recorded", "unknown (data missing)", "{checks}: {status}"} <= set(found)


def test_every_marked_template_has_a_zh_hans_translation() -> None:
    missing = [f"{where}: {t!r}" for t, where in marked().items() if t not in chinese()]
    assert not missing, f"add these to src/abscopal/web/locales/zh_Hans/LC_MESSAGES/engines.po: {missing}"


def test_every_translation_of_a_marked_template_keeps_its_placeholders() -> None:
    wrong = [(t, chinese()[t]) for t in marked() if t in chinese() and _placeholders(chinese()[t]) != _placeholders(t)]
    assert not wrong, f"translations whose placeholders differ from their template: {wrong}"


def test_the_marked_templates_use_plain_named_placeholders() -> None:
    """Values arrive formatted (``:g``, units), so a translation cannot get a format spec wrong."""
    odd = [t for t in marked() if re.search(r"\{[^}]*[:!][^}]*\}|\{\d*\}", t)]
    assert not odd, odd


def test_the_pure_engines_import_neither_the_web_layer_nor_babel() -> None:
    offending = []
    for package in PURE:
        for path in sorted((SRC / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                offending += [f"{path.relative_to(SRC)}: {n}" for n in names if n.startswith(("abscopal.web", "babel"))]
    assert not offending, offending


def test_a_validation_reason_is_its_english_sentence_and_a_message_the_web_can_translate() -> None:
    s = Screening("S-1", dt.date(2026, 1, 5), consent_date=dt.date(2026, 1, 9))
    (problem,) = validation.problems(s, today=dt.date(2026, 2, 1))
    assert problem.reason == "2026-01-09 is after screening (2026-01-05)" and isinstance(problem.reason, Message)
    assert translate("zh_Hans", problem.reason) == "知情同意日期 2026-01-09 晚于筛选日期（2026-01-05）"


def test_the_first_of_several_problems_keeps_its_english_count_and_its_translation() -> None:
    s = Screening("S-1", dt.date(2026, 3, 5), consent_date=dt.date(2026, 3, 9))
    with pytest.raises(ValidationError) as raised:
        validation.validate(s, today=dt.date(2026, 3, 1))
    assert raised.value.reason == "2026-03-05 is in the future (today is 2026-03-01) (and 2 more)"
    assert translate("zh_Hans", raised.value.reason) == "2026-03-05 是将来的日期（今天是 2026-03-01）（另有 2 个问题）"


def test_every_check_name_of_the_bundled_protocol_but_a_labs_has_a_zh_hans_translation() -> None:
    from abscopal.protocol.eligibility import CHECK_NAME_CONTEXT
    from abscopal.protocol.model import load_bundled
    from abscopal.web.i18n import translations

    eligibility = load_bundled().current.eligibility
    names = {
        check.name
        for criterion in [*eligibility.inclusion.values(), *eligibility.exclusion.values()]
        for check in criterion.checks.values()
        if not check.kind.startswith("lab_")  # lab names stay as written: the lab table shows them so
    }
    catalog = translations("zh_Hans")
    untranslated = sorted(n for n in names if catalog.pgettext(CHECK_NAME_CONTEXT, n) == n)
    assert len(names) >= 20
    assert untranslated == []


def test_a_check_name_is_translated_within_its_context_not_as_the_same_english_word_elsewhere() -> None:
    from abscopal.messages import Term
    from abscopal.protocol.eligibility import CHECK_NAME_CONTEXT
    from abscopal.web.i18n import gettext, translate

    assert translate("zh_Hans", Term("Age", CHECK_NAME_CONTEXT)) == "年龄"
    assert gettext("zh_Hans", "Age") != "年龄"  # the queries inbox's "Age" (how long a query has been open)
    assert str(Term("Age", CHECK_NAME_CONTEXT)) == "Age"


def _pydantic_error(annotation: object, value: object) -> dict[str, object]:
    from pydantic import TypeAdapter
    from pydantic import ValidationError as PydanticError

    with pytest.raises(PydanticError) as raised:
        TypeAdapter(annotation).validate_python(value)
    return dict(raised.value.errors()[0])


def test_a_pydantic_refusal_keeps_pydantics_english_text_and_translates() -> None:
    from typing import Annotated

    from pydantic import Field

    error = _pydantic_error(Annotated[int, Field(ge=0)], -3)
    reason = validation.pydantic_reason(error)
    assert reason == error["msg"] == "Input should be greater than or equal to 0"
    assert translate("zh_Hans", reason) == "输入应大于或等于 0"


def test_a_pydantic_date_refusal_translates_the_parsers_reason_inside_it() -> None:
    reason = validation.pydantic_reason(_pydantic_error(dt.date, "2026-13-01"))
    assert reason == "Input should be a valid date or datetime, month value is outside expected range of 1-12"
    assert translate("zh_Hans", reason) == "输入应为有效日期或日期时间：月份超出 1–12 的范围"


def test_a_pydantic_choice_refusal_lists_the_choices_with_chinese_separators() -> None:
    from typing import Literal

    reason = validation.pydantic_reason(_pydantic_error(Literal["cm", "mm", "in"], "ft"))
    assert reason == "Input should be 'cm', 'mm' or 'in'"
    assert translate("zh_Hans", reason) == "输入应为 'cm'、'mm'或'in'"


def test_a_pydantic_refusal_the_table_cannot_say_exactly_stays_in_english() -> None:
    from typing import Annotated

    from pydantic import Field

    error = _pydantic_error(Annotated[str, Field(max_length=1)], "ab")  # "1 character": the template says "characters"
    reason = validation.pydantic_reason(error)
    assert reason == "String should have at most 1 character" and not is_translated("zh_Hans", reason)


def test_an_unknown_lab_unit_is_refused_with_the_accepted_units_in_chinese() -> None:
    from abscopal.protocol import units

    with pytest.raises(ValidationError) as raised:
        units.factor("ast", "furlong")
    assert raised.value.field == "labs.ast.unit"
    english = str(raised.value.reason)
    assert english.startswith("unit 'furlong' is not known for ast (accepted: ")
    accepted = english.split("(accepted: ")[1].rstrip(")")
    assert translate("zh_Hans", raised.value.reason) == f"ast 不接受单位 'furlong'（可用单位：{accepted}）"


@pytest.mark.parametrize("action", list(Action))
def test_every_action_of_the_permission_table_has_a_chinese_name_for_refusals(action: Action) -> None:
    assert is_translated("zh_Hans", Term(action.value, ACTION_CONTEXT)), action.value


def test_a_refused_role_is_told_in_chinese_which_action_it_may_not_do_and_who_may() -> None:
    from abscopal.errors import PermissionDenied
    from abscopal.services.common import Actor, authorise
    from abscopal.store.fake_unit_of_work import FakeUnitOfWork

    with pytest.raises(PermissionDenied) as refused:
        authorise(FakeUnitOfWork(user="monitor1"), Actor("monitor1", "A Monitor", Role.MONITOR), Action.ADVERSE_EVENTS)
    english = (
        "monitor1 (monitor) may not do 'adverse events'; it needs: coordinator, investigator, radiation oncologist"
    )
    assert str(refused.value) == english
    assert translate("zh_Hans", refused.value.message) == (
        "monitor1（监查员）无权执行“不良事件”；需要以下角色之一：研究协调员、研究者、放疗科医师"
    )


@pytest.mark.parametrize("role", list(Role))
def test_every_role_has_a_chinese_name_for_refusals_and_the_admin_pages(role: Role) -> None:
    assert is_translated("zh_Hans", role_name(role)), role.value


def test_a_public_holidays_name_comes_in_chinese_from_the_holidays_package() -> None:
    from abscopal.protocol.calendar import WorkingDays

    name = WorkingDays("CN").holiday_name(dt.date(2025, 10, 7))
    assert name == "Day off (substituted from 09/28/2025)"
    assert translate("zh_Hans", name) == "休息日（由 2025-09-28 调休）"
    assert pickle.loads(pickle.dumps(name)) == name and translate("zh_Hans", pickle.loads(pickle.dumps(name))) == (
        "休息日（由 2025-09-28 调休）"
    )
    assert WorkingDays("CN").holiday_name(dt.date(2025, 10, 9)) is None


def test_a_visit_moved_off_a_holiday_says_so_in_chinese() -> None:
    from abscopal.messages import Localised

    note = Message(
        "moved from {day} ({holiday})", day="2025-10-01", holiday=Localised("National Day", zh_Hans="国庆节")
    )
    assert note == "moved from 2025-10-01 (National Day)"
    assert translate("zh_Hans", note) == "由 2025-10-01 顺延（国庆节）"
