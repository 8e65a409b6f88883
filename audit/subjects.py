"""Where a subject links to in the reviewer's pages: a registry of subject pages.

An event's subject is free text to the log (`job:<id>`, `user:<id>`, `login:<any name
tried at the sign-in form>`, ...). Apps that own a kind of subject register a page
for its prefix (the compliance app registers `job:` -> its per-job timeline); every
other subject links to the event list filtered by that subject.

The subject always travels in the query string (`?subject=...`, urlencoded), never as
a path argument: a path converter cannot carry every string (a `/` in a user name
tried at sign-in would make the link impossible to build), and a subject is written
by whoever can reach the sign-in form.

Apps also register the prefixes of the subjects they write (:func:`register_prefix`;
a page's prefix counts too), so a bare id or hash pasted into the subject filter finds
`<prefix><value>` (:func:`expand`).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.urls import reverse

_PAGES: dict[str, str] = {}
_PREFIXES: set[str] = set()


def register_prefix(prefix: str) -> None:
    """Declare a subject prefix an app writes (e.g. `order:`), for bare-value searches."""
    if not prefix:
        raise ValueError("a subject prefix must not be empty")
    _PREFIXES.add(prefix)


_ALIASES: list = []


def register_aliases(aliases) -> None:
    """``aliases(subject) -> [other subjects]`` that name the same thing (an app that
    records an object under another name: the jobs app's keyed artifact ids)."""
    if aliases not in _ALIASES:
        _ALIASES.append(aliases)


def expand(value: str) -> list[str]:
    """The subjects a search for ``value`` means: itself, and prefix+value when bare."""
    known = sorted(_PREFIXES | set(_PAGES))
    if not value or any(value.startswith(prefix) for prefix in known):
        return [value]
    return [value, *(prefix + value for prefix in known)]


def expand_with_aliases(value: str) -> list[str]:
    """:func:`expand`, plus the registered aliases of each name (they may read the
    database: for queries, not for pure code)."""
    names = expand(value)
    for aliases in _ALIASES:
        names += [alias for name in list(names) for alias in aliases(name) if alias not in names]
    return names


def register_page(prefix: str, url_name: str) -> None:
    """Link subjects starting with `prefix` to the view `url_name`.

    The view takes no path arguments and reads the subject from `?subject=`.
    """
    if not prefix:
        raise ValueError("a subject page needs a non-empty prefix")
    _PAGES[prefix] = url_name
    _PREFIXES.add(prefix)


def page_name(subject: str) -> str:
    """The URL name of the page for `subject` (the longest registered prefix wins)."""
    for prefix in sorted(_PAGES, key=len, reverse=True):
        if subject.startswith(prefix):
            return _PAGES[prefix]
    return "audit:events"


def url_for(subject: str) -> str:
    return reverse(page_name(subject)) + "?" + urlencode({"subject": subject})


def events_url(**filters: str) -> str:
    """The event list filtered by `filters` (e.g. request_id=...), safely encoded."""
    return reverse("audit:events") + "?" + urlencode(filters)
