"""Model text (node, tensor and graph names, attribute strings: anything a model file chose) made
safe for each place hetero prints it. A name is data, never markup or a terminal command:

- :func:`printable`: one line of plain text for a terminal or a log: control characters
  (C0, C1, DEL, ESC sequences), line and paragraph separators and bidirectional overrides
  become visible escapes (``\\x1b``, ``\\n``, ``\\u202e``); invalid UTF-8 (bytes) is shown
  byte by byte (``\\xff``). The result has no character a terminal interprets.
- :func:`markdown`: :func:`printable`, then HTML-escaped and with Markdown's punctuation
  backslash-escaped: it renders as the same literal text in a table cell, a heading or a list.
- :func:`rich_markup`: :func:`printable`, then escaped for rich's console markup (a name
  ``[/]`` or ``[bold]`` prints as itself).
- :func:`plot_label`: :func:`printable`, with matplotlib's mathtext ``$`` escaped.

JSON needs no helper beyond :func:`printable` for bytes: ``json.dumps`` escapes control
characters itself; :func:`as_str` turns bytes (a name that is not UTF-8) into a ``str``."""

from __future__ import annotations

import re
import unicodedata

__all__ = ["as_str", "printable", "markdown", "rich_markup", "plot_label"]

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def as_str(text: object) -> str:
    """``text`` as a ``str``: bytes decoded as UTF-8 with undecodable bytes as ``\\xNN``;
    anything else by ``str()``."""
    if isinstance(text, (bytes, bytearray)):
        return bytes(text).decode("utf-8", "backslashreplace")
    return text if isinstance(text, str) else str(text)


def _unsafe(ch: str) -> bool:
    if ch.isprintable() or ch == " ":
        return False
    return unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")


def _escape(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: object, keep_newlines: bool = False) -> str:
    """One line of plain text (see the module docstring); ``keep_newlines`` leaves ``\\n`` as
    it is (a multi-line message whose lines are each safe)."""
    s = as_str(text)
    if s.isprintable() and "\n" not in s:
        return s
    return "".join(ch if not _unsafe(ch) or (keep_newlines and ch == "\n") else _escape(ch)
                   for ch in s)


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def markdown(text: object) -> str:
    """Literal text for Markdown (a table cell, a heading, a list item): no HTML, no emphasis,
    no link, no heading, no line break, no table cell boundary."""
    s = printable(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", s)


def rich_markup(text: object) -> str:
    """Literal text inside rich console markup: every ``[`` escaped (and a backslash before
    one doubled), a trailing backslash doubled."""
    s = printable(text)
    s = re.sub(r"(\\*)\[", lambda m: m.group(1) * 2 + "\\[", s)
    if s.endswith("\\"):
        s += "\\"
    return s


def plot_label(text: object) -> str:
    """Literal text for a matplotlib label or title (no mathtext)."""
    return printable(text).replace("$", r"\$")
