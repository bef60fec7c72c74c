"""Which fields of a map variable an expression can read, so that only those are handed over.

Handing a map to a CEL runtime converts every entry, read or not: for a 13-field Slack event
that is about half of what a one-clause filter costs to evaluate. When every use of the
variable in the source is a plain field selection (`event.text`, `has(event.user_id)`,
`event.text.contains("x")`), the expression can only ever see those fields, and a map of just
them gives the same result, errors included: a field that is missing is missing from both.
Any other use (`event["text"]`, `size(event)`, `"text" in event`, `event.?text`, a macro over
the map, the name rebound by a macro) means the whole map, and so does anything this scan
does not understand.
"""

from __future__ import annotations

import re

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SELECTION = re.compile(r"\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)(\s*\()?")
# A raw string literal's prefix, just before its opening quote: r, R, rb, br...
_RAW_PREFIX = re.compile(r"(?:[rR][bB]?|[bB][rR])$")


def referenced_fields(expression: str, variable: str) -> frozenset[str] | None:
    """The fields of `variable` the expression selects, or None if it may use the whole map."""
    code = without_strings_and_comments(expression)
    if code is None:
        return None
    fields: set[str] = set()
    for match in _IDENTIFIER.finditer(code):
        if match.group() != variable:
            continue
        before = code[: match.start()].rstrip()
        if before.endswith("."):
            # `x.event`: a field of something else, not the variable.
            continue
        selection = _SELECTION.match(code, match.end())
        if selection is None or selection.group(2) is not None:
            return None
        fields.add(selection.group(1))
    return frozenset(fields)


def without_strings_and_comments(expression: str) -> str | None:
    """The source with string literals and comments blanked to spaces; None if a literal does
    not end (the compiler rejects it anyway). It is as long as the source, so a position in it
    is the same position in the source."""
    out: list[str] = []
    index, length = 0, len(expression)
    while index < length:
        char = expression[index]
        if expression.startswith("//", index):
            newline = expression.find("\n", index)
            line_end = length if newline < 0 else newline
            out.append(" " * (line_end - index))
            index = line_end
            continue
        if char in "'\"":
            raw = _RAW_PREFIX.search("".join(out[-2:])) is not None
            triple = expression.startswith(char * 3, index)
            quote = char * 3 if triple else char
            end = _string_end(expression, index + len(quote), quote, raw)
            if end is None:
                return None
            out.append(" " * (end - index))
            index = end
            continue
        out.append(char)
        index += 1
    return "".join(out)


def _string_end(expression: str, index: int, quote: str, raw: bool) -> int | None:
    while index < len(expression):
        if not raw and expression[index] == "\\":
            index += 2
            continue
        if expression.startswith(quote, index):
            return index + len(quote)
        index += 1
    return None
