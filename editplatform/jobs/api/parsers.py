"""Request-body parsers of the jobs API that answer 400, never 500, for hostile JSON.

DRF's JSONParser turns only ``ValueError`` into a parse error; a body nested deeper
than the interpreter's recursion limit (``[[[[...`` ten thousand levels) raises
``RecursionError`` out of the C decoder and would answer 500. The body of this API is
flat (an object holding the edits object), so anything nested deeper than
:data:`MAX_DEPTH` is refused as well: later code (error messages, audit payloads) may
then walk the value recursively without risk.
"""

from __future__ import annotations

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 16


def nesting_depth(value) -> int:
    """How deeply lists and objects nest in ``value`` (0 for a scalar); iterative."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


class BoundedJSONParser(JSONParser):
    """JSON bodies nested at most :data:`MAX_DEPTH` levels; deeper ones are a 400."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels") from None
        if nesting_depth(data) > MAX_DEPTH:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels")
        return data
