"""Sentences that remember how they were made, so that a presentation layer can say them in another language.

The engines (protocol, response, safety ...) and the services speak English: their sentences are what the CLI
prints, what the JSON carries and what the tests pin. A :class:`Message` is such a sentence, a ``str`` equal to
the English text, that also keeps its ``template`` (``str.format`` placeholders, ``"{name} not recorded"``) and
the ``params`` it was filled with. The web layer looks the template up in its catalog and fills the translation
with the same params (``abscopal.web.i18n.translate``); everywhere else the message is just its English text.

Params are already formatted strings (numbers with their ``:g``, units, codes, names: nothing the translation
should change) or other messages (translated in their turn). :class:`Joined` is a list of sentences with a
separator. Nothing here imports the web layer or Babel: the engines stay pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def N_(template: str) -> str:
    """Mark an engine's template for the catalogs; it is translated where it is shown."""
    return template


class Message(str):
    """An English sentence (``str(message)``) made from ``template`` filled with ``params``."""

    template: str
    params: Mapping[str, str]

    def __new__(cls, template: str, /, **params: str) -> Message:
        self = super().__new__(cls, template.format(**params))
        self.template = template
        self.params = params
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (str(self), self.template, dict(self.params)))

    def __repr__(self) -> str:
        return f"Message({self.template!r}, {dict(self.params)!r})"


class Joined(Message):
    """Sentences joined by ``separator`` (``"; "``): translated part by part."""

    separator: str
    parts: tuple[str, ...]

    def __new__(cls, separator: str, parts: Iterable[str]) -> Joined:
        items = tuple(parts)
        self = str.__new__(cls, separator.join(items))
        self.template = "{parts}"
        self.params = {"parts": separator.join(items)}
        self.separator = separator
        self.parts = items
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (Joined, (self.separator, self.parts))

    def __repr__(self) -> str:
        return f"Joined({self.separator!r}, {self.parts!r})"


class Term(Message):
    """A word or name that comes from data (a protocol file's check name, ``"Life expectancy"``), translated as
    itself within ``context`` (gettext's msgctxt: the same English word can mean something else elsewhere)."""

    context: str

    def __new__(cls, text: str, context: str) -> Term:
        self = str.__new__(cls, text)
        self.template = text
        self.params = {}
        self.context = context
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (Term, (str(self), self.context))

    def __repr__(self) -> str:
        return f"Term({str(self)!r}, {self.context!r})"


class Localised(Message):
    """A name from data that comes with its own translations (a public holiday as the ``holidays`` package names it
    in each language: ``"Day off (substituted from 01/26/2025)"``, ``"休息日（由 2025-01-26 调休）"``), by the web's
    language code; a language it lacks shows the English."""

    translations: Mapping[str, str]

    def __new__(cls, text: str, /, **translations: str) -> Localised:
        self = str.__new__(cls, text)
        self.template = text.replace("{", "{{").replace("}", "}}")
        self.params = {}
        self.translations = translations
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (_localised, (str(self), dict(self.translations)))

    def __repr__(self) -> str:
        return f"Localised({str(self)!r}, {dict(self.translations)!r})"


def _localised(text: str, translations: dict[str, str]) -> Localised:
    return Localised(text, **translations)


def _restore(text: str, template: str, params: dict[str, str]) -> Message:
    message = str.__new__(Message, text)
    message.template = template
    message.params = params
    return message


__all__ = ["N_", "Joined", "Localised", "Message", "Term"]
