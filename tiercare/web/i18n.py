"""Message catalogues of the web pages (zh-CN by default, English switchable).

Catalogues are flat JSON objects ``{message_id: text}`` in ``tiercare/web/i18n/<lang>.json``.
Texts may hold ``{name}`` placeholders filled by :meth:`Translator.__call__`.

The language of a request is, in order: a ``?lang=`` query parameter, the ``lang`` cookie, the
logged-in user's ``language``, the settings' ``default_language``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

CATALOGUE_DIR = Path(__file__).with_name("i18n")
LANGUAGES: tuple[str, ...] = ("zh-CN", "en")
LANG_COOKIE = "lang"


@lru_cache(maxsize=None)
def catalogue(lang: str) -> dict[str, str]:
    """The messages of one language.

    Parameters
    ----------
    lang : str
        One of :data:`LANGUAGES`.

    Returns
    -------
    dict of str to str
        Message id to text.
    """
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language '{lang}' (one of {', '.join(LANGUAGES)})")
    with (CATALOGUE_DIR / f"{lang}.json").open(encoding="utf-8") as fh:
        data: dict[str, str] = json.load(fh)
    return data


def normalise_language(value: str | None) -> str | None:
    """Map ``zh``, ``zh-cn``, ``en-US``… to a supported language, or None."""
    if not value:
        return None
    low = value.strip().lower()
    if low.startswith("zh"):
        return "zh-CN"
    if low.startswith("en"):
        return "en"
    return None


def choose_language(
    *, query: str | None, cookie: str | None, user_language: str | None, default: str
) -> str:
    """The language of a request (query, then cookie, then user preference, then default)."""
    for candidate in (query, cookie, user_language, default):
        lang = normalise_language(candidate)
        if lang is not None:
            return lang
    return LANGUAGES[0]


@dataclass(frozen=True)
class Translator:
    """Looks up message ids in one language, falling back to the id itself.

    Examples
    --------
    >>> Translator("en")("nav.facilities")
    'Facilities'
    """

    lang: str

    def __call__(self, key: str, **values: Any) -> str:
        """The text of ``key`` with ``{placeholders}`` filled from ``values``."""
        text = catalogue(self.lang).get(key) or catalogue(LANGUAGES[0]).get(key) or key
        return text.format(**values) if values else text

    def has(self, key: str) -> bool:
        """True when the catalogue holds ``key``."""
        return key in catalogue(self.lang)

    def label(self, group: str, code: str | None, default: str | None = None) -> str:
        """Display label of a code in a group (``ftype``, ``cadre``, ``level``, ``problem``…).

        Unknown codes are shown as ``default`` when given (e.g. a refused input's English
        reason), else as they are, so new data never breaks a page.

        Examples
        --------
        >>> Translator("zh-CN").label("cadre", "nurse")
        '注册护士'
        >>> Translator("zh-CN").label("cadre", "herbalist")
        'herbalist'
        >>> Translator("zh-CN").label("problem", "value_error", default="min_age is above max_age")
        'min_age is above max_age'
        """
        if code is None or code == "":
            return "—"
        key = f"{group}.{code}"
        if key in catalogue(self.lang):
            return self(key)
        return code if default is None else default
