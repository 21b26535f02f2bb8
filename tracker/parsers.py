"""The API's JSON parser (DEFAULT_PARSER_CLASSES). Its own module: DRF reads the setting while importing
rest_framework.views, which tracker.api imports."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# Not a clinical number: the deepest a request body needs is a regimen's options (3 levels) or a panel's
# results (3); 20 leaves room for any client while refusing a body built to exhaust the parser's stack.
MAX_JSON_DEPTH = 20


def json_depth_problem(data: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when `data` nests objects or lists more than `limit` levels deep (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Iterable[Any] = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


class JSONObjectParser(JSONParser):
    """JSON bodies as every write documents them: one object. A body that is `null`, `true`, a number, a
    string or a list, or that nests more than MAX_JSON_DEPTH levels, is a 400 naming the reason, not a
    TypeError or a RecursionError deep inside a view (issue 12)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - the body nests more than {MAX_JSON_DEPTH} levels deep") from None
        if not isinstance(data, dict):
            raise ParseError(f"JSON parse error - the body must be a JSON object ({{...}}), not {type(data).__name__}")
        if json_depth_problem(data):
            raise ParseError(f"JSON parse error - the body nests more than {MAX_JSON_DEPTH} levels deep")
        return data
