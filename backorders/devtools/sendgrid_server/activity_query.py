"""The Email Activity query language (a subset of SendGrid's), parsed into a predicate."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

_ACTIVITY_FIELDS = frozenset(
    {"msg_id", "to_email", "from_email", "subject", "status", "template_id"}
)
_TOKEN_RE = re.compile(
    r"""\s*(?:
        (?P<arg>unique_args\[(?:'(?P<a1>[^']*)'|"(?P<a2>[^"]*)")\])
      | (?P<word>[A-Za-z_][A-Za-z_0-9]*)
      | "(?P<dq>(?:\\.|[^"\\])*)"
      | '(?P<sq>(?:\\.|[^'\\])*)'
      | \u201c(?P<cq>[^\u201d]*)\u201d
      | (?P<op>!=|=|\(|\)|,)
    )""",
    re.VERBOSE,
)
_KEYWORDS = frozenset({"AND", "OR", "IN", "NOT", "LIKE"})

Predicate = Callable[[dict[str, Any]], bool]


def _tokens(query: str) -> list[tuple[str, str]]:
    """(kind, text) tokens: arg, field, kw, str, op."""
    out: list[tuple[str, str]] = []
    pos = 0
    query = query.rstrip()
    while pos < len(query):
        m = _TOKEN_RE.match(query, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"invalid syntax near {query[pos : pos + 20]!r}")
        pos = m.end()
        if m.group("arg") is not None:
            out.append(("arg", m.group("a1") if m.group("a1") is not None else m.group("a2")))
        elif m.group("word") is not None:
            word = m.group("word")
            if word.upper() in _KEYWORDS:
                out.append(("kw", word.upper()))
            elif word in _ACTIVITY_FIELDS:
                out.append(("field", word))
            else:
                raise ValueError(f"invalid syntax: '{word}' is not a known field")
        elif m.group("op") is not None:
            out.append(("op", m.group("op")))
        else:
            raw = next(g for g in (m.group("dq"), m.group("sq"), m.group("cq")) if g is not None)
            out.append(("str", re.sub(r"\\(.)", r"\1", raw)))
    return out


class _QueryParser:
    """Recursive descent over the tokens: OR of ANDs of comparisons (or parentheses)."""

    def __init__(self, query: str) -> None:
        self.toks = _tokens(query)
        self.i = 0

    def parse(self) -> Predicate:
        if not self.toks:
            raise ValueError("invalid syntax: empty query")
        pred = self._or()
        if self.i != len(self.toks):
            raise ValueError(f"invalid syntax: unexpected {self.toks[self.i][1]!r}")
        return pred

    def _peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def _take(self, kind: str, text: str | None = None) -> str:
        tok = self._peek()
        if tok is None or tok[0] != kind or (text is not None and tok[1] != text):
            want = text or kind
            raise ValueError(f"invalid syntax: expected {want}, got {tok[1] if tok else 'end'!r}")
        self.i += 1
        return tok[1]

    def _or(self) -> Predicate:
        parts = [self._and()]
        while self._peek() == ("kw", "OR"):
            self.i += 1
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else lambda m: any(p(m) for p in parts)

    def _and(self) -> Predicate:
        parts = [self._atom()]
        while self._peek() == ("kw", "AND"):
            self.i += 1
            parts.append(self._atom())
        return parts[0] if len(parts) == 1 else lambda m: all(p(m) for p in parts)

    def _atom(self) -> Predicate:
        tok = self._peek()
        if tok == ("op", "("):
            self.i += 1
            inner = self._or()
            self._take("op", ")")
            return inner
        if tok is not None and tok[0] == "arg":
            self.i += 1
            name = tok[1]

            def arg_value(m: dict[str, Any]) -> str | None:
                value = m["unique_args"].get(name)
                return None if value is None else str(value)

            getter: Callable[[dict[str, Any]], str | None] = arg_value
        elif tok is not None and tok[0] == "field":
            self.i += 1
            fname = tok[1]

            def field_value(m: dict[str, Any]) -> str | None:
                value = m.get(fname)
                return None if value is None else str(value)

            getter = field_value
        else:
            raise ValueError(f"invalid syntax: expected a field, got {tok[1] if tok else 'end'!r}")
        negate = False
        if self._peek() == ("kw", "NOT"):
            self.i += 1
            negate = True
        op = self._peek()
        if op == ("op", "=") and not negate:
            self.i += 1
            want = self._take("str")
            return lambda m: getter(m) == want
        if op == ("op", "!=") and not negate:
            self.i += 1
            want = self._take("str")
            return lambda m: getter(m) != want
        if op == ("kw", "IN"):
            self.i += 1
            self._take("op", "(")
            values = {self._take("str")}
            while self._peek() == ("op", ","):
                self.i += 1
                values.add(self._take("str"))
            self._take("op", ")")
            return lambda m: (getter(m) in values) != negate
        if op == ("kw", "LIKE"):
            self.i += 1
            pattern = self._take("str")
            rx = re.compile(
                "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern),
                re.DOTALL,
            )
            return lambda m: (rx.fullmatch(getter(m) or "") is not None) != negate
        raise ValueError(f"invalid syntax: unsupported operator {op[1] if op else 'end'!r}")


def parse_activity_query(query: str) -> Predicate:
    """A predicate over activity messages for a query, or ValueError (-> 400)."""
    return _QueryParser(query).parse()
