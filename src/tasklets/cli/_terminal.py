"""Text from the network made safe for a terminal.

A status reason, a header, a redirect's URL or an exception's message can
hold any byte a server chose, and a terminal obeys escape sequences: ``ESC
[2J`` clears the screen, ``ESC ] 0;...BEL`` sets the window title, others
rewrite what was printed before or (on some terminals) answer back into the
input. :func:`printable` writes every control character as a visible escape
(``\\x1b``), as ``repr()`` does: C0 and DEL, the C1 controls (which some
terminals take as ESC sequences of their own), and the bidirectional
overrides that reorder what is shown ("Trojan Source"). Every line ``tasklets
fetch`` writes to a terminal goes through it; JSON needs no help, since
``json.dumps`` escapes control characters itself.
"""

from __future__ import annotations

import re

__all__ = ["printable"]

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every control character (newlines too) written as a backslash escape."""
    if text.isprintable():  # none of _UNSAFE is (each is a control, format or separator character)
        return text
    return _UNSAFE.sub(_escape, text)
