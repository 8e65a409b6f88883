"""Cursor pagination of the jobs list: the cursor itself is a field of the page.

Generated clients take a ``cursor`` query parameter, not a URL, so each page carries
``next_cursor`` / ``previous_cursor`` (the opaque value to pass back) next to DRF's
``next`` / ``previous`` links. A cursor this API did not hand out is a 400 naming the
``cursor`` parameter: DRF would answer 404 for an undecodable one, and a decodable one
with a forged position would reach the database as an invalid timestamp (500).
"""

from __future__ import annotations

import datetime
from urllib.parse import parse_qs, urlsplit

from django.utils.dateparse import parse_datetime
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from editplatform.core.errors import DomainError


def _bad_cursor() -> DomainError:
    return DomainError("cursor is not one this API returned", "invalid_cursor", field="cursor")


def cursor_of(url: str | None) -> str | None:
    """The ``cursor`` query parameter of a page link, or None."""
    if not url:
        return None
    return parse_qs(urlsplit(url).query).get("cursor", [None])[0]


def _is_timestamp(text: str) -> bool:
    """An aware timestamp that every database can compare with (in range once in UTC)."""
    try:
        value = parse_datetime(text) if "\x00" not in text else None
        return (
            value is not None
            and value.tzinfo is not None
            and value.astimezone(datetime.UTC) is not None
        )
    except (ValueError, OverflowError):
        return False


class JobCursorPagination(CursorPagination):
    ordering = "-created_at"
    page_size_query_param = "page_size"
    max_page_size = 200

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
        except NotFound:  # DRF answers 404 for a malformed cursor; it is a bad parameter
            raise _bad_cursor() from None
        if cursor is not None and cursor.position is not None:
            if not _is_timestamp(cursor.position):  # the positions it writes are created_at values
                raise _bad_cursor()
        return cursor

    def get_paginated_response(self, data):
        next_url, previous_url = self.get_next_link(), self.get_previous_link()
        return Response(
            {
                "next_cursor": cursor_of(next_url),
                "previous_cursor": cursor_of(previous_url),
                "next": next_url,
                "previous": previous_url,
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema):
        cursor = {
            "type": "string",
            "nullable": True,
            "description": (
                "pass as the `cursor` query parameter for the next page; null on the last page"
            ),
        }
        link = {"type": "string", "nullable": True, "format": "uri"}
        return {
            "type": "object",
            "required": ["next_cursor", "previous_cursor", "next", "previous", "results"],
            "properties": {
                "next_cursor": cursor,
                "previous_cursor": {
                    **cursor,
                    "description": "pass as `cursor` for the page before; null on the first",
                },
                "next": {**link, "description": "the next page's full URL (the same cursor)"},
                "previous": {**link, "description": "the previous page's full URL"},
                "results": schema,
            },
        }
