"""Just enough SQL lexing for Tickwave's own statements, and ClickHouse quoting.

The lexer skips quoted strings (a heredoc ``$tag$...$tag$`` too, when its closing tag
follows; else ``$tag$`` is a word, as ClickHouse lexes it), quoted identifiers and comments, so ``;`` or a keyword
inside a literal is never mistaken for syntax: the migrations split their files into
statements with it, and the embedded server routes HTTP requests with it
(:mod:`warehouse_server.query.routing`). Nothing here decides security.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
    |(?P<comment>--[^\n]*|\#[^\n]*|/\*.*?(?:\*/|\Z))
    |(?P<string>'(?:[^'\\]|\\.|'')*(?:'|\\?\Z)|\$(?P<tag>[A-Za-z0-9_]*)\$.*?\$(?P=tag)\$)
    |(?P<quoted>`(?:[^`\\]|\\.|``)*(?:`|\\?\Z)|"(?:[^"\\]|\\.|"")*(?:"|\\?\Z))
    |(?P<word>[A-Za-z_$][A-Za-z0-9_$]*)
    |(?P<number>[0-9][0-9A-Za-z_.]*)
    |(?P<open>[(\[])
    |(?P<close>[)\]])
    |(?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_SKIPPED = ("space", "comment")


@dataclass(frozen=True)
class Token:
    """One lexical token: its kind (a group name of ``_TOKEN``), text and span."""

    kind: str
    text: str
    start: int
    end: int
    depth: int

    @property
    def upper(self) -> str:
        """The text upper-cased (keywords are case-insensitive)."""
        return self.text.upper()

    @property
    def name(self) -> str:
        """The identifier this token names, unquoted (empty for non-identifiers)."""
        if self.kind == "word":
            return self.text
        if self.kind == "quoted":
            return self.text[1:-1]
        return ""


def tokens(text: str) -> Iterator[Token]:
    """Yield the significant tokens of ``text`` (whitespace and comments skipped) with paren depth."""
    depth = 0
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "other"
        if kind in _SKIPPED:
            continue
        if kind == "close":
            depth = max(0, depth - 1)
        yield Token(kind, match.group(), match.start(), match.end(), depth)
        if kind == "open":
            depth += 1


def quote_literal(value: str) -> str:
    """Return ``value`` as a ClickHouse single-quoted string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_identifier(name: str) -> str:
    """Return ``name`` as a back-quoted ClickHouse identifier."""
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"
