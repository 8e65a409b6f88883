"""Where a subject links to in the reviewer's pages: a registry of subject pages.

An event's subject is free text to the log (`job:<id>`, `user:<id>`, ...). Apps that
own a kind of subject register a page for its prefix (the compliance app registers
`job:` -> its per-job timeline); every other subject links to the event list
filtered by that subject. Apps also register the prefixes of the subjects they write
(:func:`register_prefix`; a page's prefix counts too), so a bare id or hash pasted
into the subject filter finds `<prefix><value>` (:func:`expand`).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.urls import NoReverseMatch, reverse

_PAGES: dict[str, str] = {}
_PREFIXES: set[str] = set()


def register_prefix(prefix: str) -> None:
    """Declare a subject prefix an app writes (e.g. `order:`), for bare-value searches."""
    if not prefix:
        raise ValueError("a subject prefix must not be empty")
    _PREFIXES.add(prefix)


def expand(value: str) -> list[str]:
    """The subjects a search for ``value`` means: itself, and prefix+value when bare."""
    value = value.strip()
    known = sorted(_PREFIXES | set(_PAGES))
    if not value or any(value.startswith(prefix) for prefix in known):
        return [value]
    return [value, *(prefix + value for prefix in known)]


def register_page(prefix: str, url_name: str) -> None:
    """Link subjects starting with `prefix` to the view `url_name` (one argument: the subject)."""
    if not prefix:
        raise ValueError("a subject page needs a non-empty prefix")
    _PAGES[prefix] = url_name
    _PREFIXES.add(prefix)


def url_for(subject: str) -> str:
    for prefix in sorted(_PAGES, key=len, reverse=True):
        if subject.startswith(prefix):
            try:
                return reverse(_PAGES[prefix], args=[subject])
            except NoReverseMatch:  # e.g. a '/' in the subject: fall back to the filter
                break
    return reverse("audit:events") + "?" + urlencode({"subject": subject})
