"""Template text made safe to print: a logical id, a construct path or a message can hold anything a
JSON or YAML string can, and a writer must neither crash on it nor let it steer a terminal, break
an XML file or run as a spreadsheet formula."""
from __future__ import annotations

import re

REPLACEMENT = "\ufffd"
# C0 and C1 controls (ESC starts terminal sequences, CR overwrites a line, most C0 are not XML),
# DEL, bidirectional overrides and isolates (text that reads differently from what it is), and
# U+FFFE/U+FFFF (not XML characters). Patterns, not compiled at import: only text outside
# printable ASCII needs them, and re compiles each once, on its first use.
_CONTROL = "[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufffe\uffff]"
_CONTROL_KEEP_LINES = "[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufffe\uffff]"
_SURROGATE = "[\ud800-\udfff]"  # lone halves: not encodable as UTF-8, not XML
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(value, *, lines: bool = False) -> str:
    """`value` as text that is valid Unicode, with each control character shown as an escape
    (`\\x1b`) instead of acting; `lines=True` keeps newlines and tabs."""
    text = "" if value is None else str(value)
    if text.isascii() and text.isprintable():  # the common case, and fast
        return text
    text = re.sub(_SURROGATE, REPLACEMENT, text)
    return re.sub(_CONTROL_KEEP_LINES if lines else _CONTROL, _escape, text)


def spreadsheet_cell(value):
    """A CSV cell that a spreadsheet shows as text: printable, and a leading = + - @ (or tab, CR)
    quoted with ' so it is not run as a formula. Numbers stay numbers."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    text = printable(value, lines=True)
    return "'" + text if text.startswith(FORMULA_START) else text


def markdown_cell(value) -> str:
    """Text for a Markdown table cell: printable, on one line, `|` escaped and `<` written as an
    entity so a template's text cannot open a tag."""
    text = printable(str("" if value is None else value).replace("\r\n", " ").replace("\n", " "))
    return text.replace("|", "\\|").replace("<", "&lt;")


def markdown_code(value) -> str:
    """A code span in a Markdown table cell whatever the text holds: a fence longer than any run
    of backticks inside, so an id with a backtick cannot end the span and start Markdown."""
    text = printable(str("" if value is None else value).replace("\r\n", " ").replace("\n", " "))
    text = text.replace("|", "\\|")
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if longest else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def valid_unicode(value):
    """`value` (a JSON document) with each lone surrogate replaced by U+FFFD: json.dumps writes
    one as the escape \\ud800, which jq, serde and Go readers reject or silently replace."""
    if isinstance(value, str):
        return value if value.isascii() else re.sub(_SURROGATE, REPLACEMENT, value)
    if isinstance(value, dict):
        return {valid_unicode(k): valid_unicode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [valid_unicode(v) for v in value]
    return value
