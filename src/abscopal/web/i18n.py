"""Translations (web.md §8): gettext catalogs managed with Babel, English source strings, zh-Hans catalog.

The ``.po`` files under ``web/locales`` are the source; they are compiled in memory at start (Babel's
``write_mo``), so the served text can never lag behind the catalog. Clinical codes (RECIST categories, CTCAE
terms, SDTM values) are not translated: they stay as the standards write them.

The engines' and the services' sentences (eligibility reasons, radiotherapy checks, validation errors) are
:class:`abscopal.messages.Message` objects: English ``str`` that keep their template and params. :func:`translate`
looks the template up (their translations are in ``engines.po``) and fills it with the same params; any other text,
and a template without a translation, is shown as it is (English).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from abscopal.errors import ValidationError
from abscopal.messages import Joined, Localised, Message, Term

LOCALES = Path(__file__).parent / "locales"
LANGUAGE_NAMES = {"en": "English", "zh_Hans": "中文（简体）"}
HTML_LANG = {"en": "en", "zh_Hans": "zh-Hans"}


@cache
def translations(language: str) -> NullTranslations:
    """The language's catalog: ``messages.po`` merged with every other ``*.po`` beside it (one per page area, so
    that areas can be translated apart); the first translation of a message wins."""
    folder = LOCALES / language / "LC_MESSAGES"
    files = sorted(folder.glob("*.po"), key=lambda po: (po.name != "messages.po", po.name))
    if language == "en" or not files:
        return NullTranslations()
    merged = Catalog(locale=language, fuzzy=False)
    for po in files:
        with po.open("rb") as f:
            for message in read_po(f, locale=language):
                if message.id and message.string and not merged.get(message.id, context=message.context):
                    merged[message.id] = message
    buffer = io.BytesIO()
    write_mo(buffer, merged)
    buffer.seek(0)
    return Translations(buffer)


def N_(message: str) -> str:
    """Mark a string for extraction where it is defined; it is translated where it is shown (``_(label)``)."""
    return message


def gettext(language: str, message: str) -> str:
    return translations(language).gettext(message)


#: The separators of :class:`~abscopal.messages.Joined` lists as each language writes them.
SEPARATORS = {"zh_Hans": {"; ": "；", ", ": "、", " and ": " 且 ", ", nor ": "、"}}


def translate(language: str, text: str) -> str:
    """An engine's or a service's sentence in ``language``: a :class:`~abscopal.messages.Message`'s template
    translated and filled with its params (themselves translated when they are messages); other text as it is."""
    if language == "en" or not isinstance(text, Message):
        return str(text)
    if isinstance(text, Term):
        return str(translations(language).pgettext(text.context, str(text)))
    if isinstance(text, Localised):
        return text.translations.get(language, str(text))
    if isinstance(text, Joined):
        separator = SEPARATORS.get(language, {}).get(text.separator, text.separator)
        return separator.join(translate(language, part) for part in text.parts)
    template = gettext(language, text.template)
    params = {k: translate(language, v) for k, v in text.params.items()}
    try:
        return template.format(**params)
    except (KeyError, IndexError, ValueError):  # a translation whose placeholders differ (a test refuses them)
        return str(text)


def label_lookup(labels: Mapping[str, str], language: str) -> Callable[[str], str]:
    """``labels`` (key -> an ``N_`` label) translated once, for a page that names many keys (a calendar's ~100
    visits each name their kind and status): the label of a key, else the key itself."""
    translated = {key: gettext(language, text) for key, text in labels.items()}
    return lambda key: translated.get(key, key)


def is_translated(language: str, text: str) -> bool:
    """True when :func:`translate` gives ``text`` in ``language`` (not its English fallback)."""
    return language != "en" and isinstance(text, Message) and translate(language, text) != str(text)


def sentences_in(language: str, sentences: Sequence[str]) -> list[dict[str, str]]:
    """Engine or service sentences for a list: ``text`` in ``language``, ``lang`` "en" for one still in English on
    a page in another language (an English page marks its whole list)."""
    if language == "en":
        return [{"text": str(s), "lang": ""} for s in sentences]
    return [{"text": translate(language, s), "lang": "" if is_translated(language, s) else "en"} for s in sentences]


def error_text(language: str, exc: BaseException) -> str:
    """``str(exc)`` in ``language``: a :class:`~abscopal.errors.ValidationError` whose reason is a message is
    ``"field: reason"`` with the reason translated; another error whose sentence is a message (a refusal, a record
    not found) is that message translated; any other error as it is (its English sentence)."""
    if language == "en":
        return str(exc)
    reason = getattr(exc, "reason", None)
    if isinstance(exc, ValidationError):
        if not isinstance(reason, Message):
            return str(exc)
        return translate(
            language, Message(N_("{field}: {reason}"), field=exc.field, reason=reason) if exc.field else reason
        )
    message = getattr(exc, "message", None)
    return translate(language, message) if isinstance(message, Message) else str(exc)


def in_language(
    language: str, errors: Mapping[str, str], sentence: str | None, exc: BaseException
) -> tuple[dict[str, str], str | None]:
    """A refused form's (errors by field, sentence for the top) as ``forms.errors_of`` gives them, in
    ``language``: each field's reason translated, and the top sentence when it is the error's own."""
    found = {field: translate(language, reason) for field, reason in errors.items()}
    if sentence is not None:
        sentence = error_text(language, exc) if sentence == str(exc) else translate(language, sentence)
    return found, sentence
