"""Text that did not come from tui-nn's own code, made inert before it reaches a terminal.

Run names, config values, record fields, dataset paths, layer names and error messages can hold
anything: ESC sequences that retitle or blank the terminal, C1 controls (a lone 0x9b is a CSI on
some terminals), bidi overrides that reorder what is shown, or megabytes of one word. `clean`
turns every such character into a visible escape (`\\x1b`, `\\u202e`) and caps the length.
Markup is a separate matter: UI code puts cleaned text into `Text`/`Content` objects (or prints
with markup off), never into markup strings. Stdlib only: every layer may use it.
"""

from __future__ import annotations

import re
import sys
from typing import TextIO

# Long enough for any honest name, path or message; a cap so one field cannot fill a screen.
MAX_CHARS = 2000

# C0 controls except tab and newline, DEL, C1 (0x80-0x9f), bidi embeddings/overrides and
# isolates (U+202A-202E, U+2066-2069), and the line/paragraph separators.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
_UNSAFE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean(text: object, max_chars: int = MAX_CHARS) -> str:
    """`text` as a string with every control character shown as a visible escape (tab and
    newline kept) and at most about max_chars characters."""
    return _cap(_UNSAFE.sub(_visible, _cut(str(text), max_chars)), max_chars)


def clean_line(text: object, max_chars: int = MAX_CHARS) -> str:
    """Like clean, for one line (a table cell, a title): tab and newline are escaped too."""
    return _cap(_UNSAFE_LINE.sub(_visible, _cut(str(text), max_chars)), max_chars)


def say(text: object, file: TextIO | None = None) -> None:
    """Print a line that quotes what the user typed or another program said (a path, an
    error's words), made inert: the CLI's one way to the terminal for such text."""
    print(clean(text), file=sys.stdout if file is None else file, flush=True)


def error(message: object) -> None:
    """`error: message` on stderr, made inert (see say)."""
    say(f"error: {message}", sys.stderr)


def first_line(exc: BaseException, with_type: bool = False) -> str:
    """An exception's first line of text, inert (its words can quote anything): its type's
    name when it has no text, or before the text with with_type."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else ""
    if with_type or not line:
        line = f"{type(exc).__name__}: {line}" if line else type(exc).__name__
    return clean_line(line)


def inert_cells(text: str) -> str:
    """`text` with each control character replaced by one U+FFFD: for a grid of cells (a
    plot's), where a longer visible escape would shift every cell after it."""
    return _UNSAFE_LINE.sub("\ufffd", text)


def _cut(text: str, max_chars: int) -> str:
    # Escaping first would cost time on a 50 MB string: cut the raw text, then cap again.
    return text if len(text) <= max_chars else text[:max_chars + 1]


def _cap(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    return text[:max_chars] + "…"
