"""Where things are in a TOML text: statements, their line spans, and the line of every key.

`tomllib` gives values but no positions. This scanner follows the TOML 1.0 lexical
rules (four string kinds, arrays over several lines, inline tables, comments, dates
with a space) far enough to know, for every statement, where it starts and ends and
what full key path it defines (`("script", 3, "at")`, array-of-tables indices
resolved), without converting any value. Error messages use it to name the line and
field; the structural editor (lazytsc.tomledit) uses the spans to rewrite one array
of tables and keep every other byte.

It never recurses (nesting is an explicit stack) and never raises on malformed text:
it resynchronises at the next line and reports how deep the nesting went, so a
caller can refuse a document nested too deeply for `tomllib` before parsing it.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field

_BARE_KEY = re.compile(r"[A-Za-z0-9_\-]+")
_WS = " \t"
LONG_SCALAR = 1_000  # no TOML number or date is this long; tomllib's int() fails beyond 4,300 digits
_SCALAR = re.compile(r"[^ \t\r\n,\]}#]+")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}$")
_TIME_AFTER_DATE = re.compile(r" \d{2}:\d{2}")

Path = tuple  # of str keys and int array indices
# One-line statements with a bare key and a value that cannot nest or span lines; the
# value is group 2. A `"""` or `'''` value fails the end-of-line check and takes the slow path.
_SIMPLE_KEYVAL = re.compile(
    r"""[ \t]*([A-Za-z0-9_\-]+)[ \t]*=[ \t]*("(?:[^"\\\n\r]|\\[^\n\r])*"|'[^'\n\r]*'|[^ \t\r\n,\]}#\[{"']+)"""
    r"[ \t]*(?:#[^\n]*)?(?:\r?\n|\Z)"
)
_SIMPLE_HEADER = re.compile(
    r"[ \t]*(\[\[?)[ \t]*([A-Za-z0-9_\-]+(?:[ \t]*\.[ \t]*[A-Za-z0-9_\-]+)*)[ \t]*(\]\]?)[ \t]*(?:#[^\n]*)?(?:\r?\n|\Z)"
)
_BLANK_LINES = re.compile(r"(?:[ \t]*(?:#[^\n]*)?\n)+")
_TRACK_DEPTH = 100  # positions are recorded this deep; deeper nesting is only measured


@dataclass(slots=True)
class Statement:
    """One top-level statement: a `[table]`/`[[array]]` header or a `key = value` line(s).

    Lines are 0-based indices of the text's lines split at "\n"; `end_line` is
    inclusive. Offsets are into the text. For a key/value, `value_start:value_end`
    is the value itself (a trailing comment is outside it).
    """

    kind: str  # "table", "array", or "keyval"
    keys: tuple[str, ...]  # as written: header names, or the dotted key
    path: Path  # resolved: table path for headers, full key path for key/values
    start_line: int
    end_line: int
    value_start: int = -1
    value_end: int = -1


@dataclass
class Scan:
    statements: list[Statement] = field(default_factory=list)
    positions: dict[Path, int] = field(default_factory=dict)  # path -> 1-based line
    max_depth: int = 0  # deepest nesting of arrays/inline tables
    deepest_line: int = 0  # 1-based line where max_depth was first reached
    deepest_path: Path = ()
    # statements the scanner could not follow: (1-based start line, key path or None)
    failures: list[tuple[int, Path | None]] = field(default_factory=list)
    # bare values (numbers) longer than LONG_SCALAR characters: (1-based line, key path)
    long_scalars: list[tuple[int, Path]] = field(default_factory=list)
    line_starts: list[int] = field(default_factory=list)

    def line_of_offset(self, offset: int) -> int:
        """0-based line index of a text offset."""
        import bisect

        return max(0, bisect.bisect_right(self.line_starts, offset) - 1)

    def statement_at_line(self, lineno: int) -> Statement | None:
        """The statement covering 1-based line `lineno`, if any."""
        for st in self.statements:
            if st.start_line <= lineno - 1 <= st.end_line:
                return st
        return None

    def where_broken(self, lineno: int | None) -> tuple[int, Path | None]:
        """Line and key path to report for a TOML syntax error at `lineno` (None: at the end).

        A construct left open (an array, a string) is reported where it starts; an error
        inside a statement the scanner followed names that statement's key; a line that
        holds no key names the table it is in.
        """
        line, path = self._where_broken(lineno)
        return line, path if path is not None else self.table_at_line(line)

    def table_at_line(self, lineno: int) -> Path | None:
        """The table (header path) a 1-based line belongs to; None in the root table."""
        found = None
        for st in self.statements:
            if st.start_line >= lineno - 1:
                break
            if st.kind != "keyval":
                found = st.path
        return found

    def _where_broken(self, lineno: int | None) -> tuple[int, Path | None]:
        if lineno is None:
            if self.failures:
                return self.failures[-1]
            last = self.statements[-1] if self.statements else None
            return (last.start_line + 1, last.path) if last else (max(1, len(self.line_starts)), None)
        for line, path in reversed(self.failures):
            if line == lineno:
                return line, path
        st = self.statement_at_line(lineno)
        if st is not None:
            return lineno, st.path
        for line, path in reversed(self.failures):
            if line < lineno:
                return lineno, path if path is not None and self._within_failure(line, lineno) else None
        return lineno, None

    def _within_failure(self, start: int, lineno: int) -> bool:
        """No statement starts between a failed statement's first line and `lineno`."""
        return not any(start - 1 < st.start_line <= lineno - 1 for st in self.statements)


class _Bad(Exception):
    """Malformed input inside a statement: the scanner skips to the next line."""


class _Scanner:
    def __init__(self, text: str, keep_statements: bool = True, fast: bool = True) -> None:
        self.text = text
        self.keep = keep_statements
        self.fast = fast  # False: every statement through the general path (tests compare both)
        self.n = len(text)
        self.pos = 0
        self.line = 0  # 0-based current line
        self.out = Scan()
        starts = [0]
        for m in re.finditer(r"\n", text):
            starts.append(m.end())
        self.out.line_starts = starts
        self.table: Path = ()
        self.array_counts: dict[Path, int] = {}
        self.current: Path | None = None  # key path of the statement being scanned

    # ---- low-level lexing ------------------------------------------------------------------
    def _lineno(self, offset: int) -> int:
        return self.out.line_of_offset(offset)

    def skip_ws(self) -> None:
        text, n = self.text, self.n
        while self.pos < n and text[self.pos] in _WS:
            self.pos += 1

    def skip_comment(self) -> None:
        if self.pos < self.n and self.text[self.pos] == "#":
            nl = self.text.find("\n", self.pos)
            self.pos = self.n if nl < 0 else nl

    def at_newline(self) -> bool:
        return self.text.startswith("\n", self.pos) or self.text.startswith("\r\n", self.pos)

    def skip_newline(self) -> None:
        if self.text.startswith("\r\n", self.pos):
            self.pos += 2
        elif self.text.startswith("\n", self.pos):
            self.pos += 1

    def skip_blank(self) -> None:
        """Whitespace, comments and newlines (inside arrays)."""
        while self.pos < self.n:
            self.skip_ws()
            self.skip_comment()
            if self.at_newline():
                self.skip_newline()
            elif self.pos < self.n and self.text[self.pos] == "\r":
                raise _Bad("bare carriage return")
            else:
                return

    def string(self) -> str:
        """Consume a string at pos (any of the four kinds); returns its raw text."""
        text = self.text
        start = self.pos
        quote = text[start]
        if text.startswith(quote * 3, start):
            end = start + 3
            while True:
                found = text.find(quote * 3, end)
                if found < 0:
                    self.pos = self.n  # the rest of the text is inside the string
                    raise _Bad("unterminated multi-line string")
                if quote == '"':
                    # a closing quote preceded by an odd run of backslashes is escaped
                    k = found - 1
                    slashes = 0
                    while k >= start + 3 and text[k] == "\\":
                        slashes += 1
                        k -= 1
                    if slashes % 2:
                        end = found + 1
                        continue
                close = found + 3
                extra = 0
                while extra < 2 and close < self.n and text[close] == quote:
                    close += 1
                    extra += 1
                self.pos = close
                return text[start:close]
        end = start + 1
        while True:
            if end >= self.n or text[end] == "\n":
                raise _Bad("unterminated string")
            ch = text[end]
            if quote == '"' and ch == "\\":
                end += 2
                continue
            if ch == quote:
                self.pos = end + 1
                return text[start:self.pos]
            end += 1

    def key_part(self) -> str:
        """One key segment: bare, "basic" or 'literal'; returns its decoded name."""
        self.skip_ws()
        if self.pos < self.n and self.text[self.pos] in "\"'":
            raw = self.string()
            if raw.startswith(raw[0] * 3):
                raise _Bad("multi-line string as a key")
            try:
                decoded = tomllib.loads(f"k = {raw}")["k"]
            except tomllib.TOMLDecodeError:
                raise _Bad("bad quoted key") from None
            return decoded
        m = _BARE_KEY.match(self.text, self.pos)
        if not m:
            raise _Bad("expected a key")
        self.pos = m.end()
        return m.group(0)

    def dotted_key(self) -> tuple[str, ...]:
        parts = [self.key_part()]
        while True:
            self.skip_ws()
            if self.pos < self.n and self.text[self.pos] == ".":
                self.pos += 1
                parts.append(self.key_part())
            else:
                return tuple(parts)

    def scalar(self, path: Path) -> None:
        """A number, boolean, date or other bare value: up to a delimiter."""
        text = self.text
        start = self.pos
        m = _SCALAR.match(text, start)
        if not m:
            raise _Bad("expected a value")
        self.pos = m.end()
        if self.pos - start > LONG_SCALAR:
            self.out.long_scalars.append((self._lineno(start) + 1, path))
        if _DATE.match(text, start, self.pos) and _TIME_AFTER_DATE.match(text, self.pos):
            m = _SCALAR.match(text, self.pos + 1)
            self.pos = m.end() if m else self.pos + 1

    def depth_reached(self, depth: int, path: Path) -> None:
        if depth > self.out.max_depth:
            self.out.max_depth = depth
            self.out.deepest_line = self._lineno(self.pos) + 1
            self.out.deepest_path = self.current if self.current is not None else path

    # ---- values (iterative: an explicit stack of open arrays / inline tables) ---------------
    def value(self, path: Path) -> None:
        """Consume one value at pos, recording the lines of nested keys and elements."""
        positions = self.out.positions
        # stack entries: ["array", path, next_index] or ["table", path]
        stack: list[list] = []
        expect_value = True
        value_path = path
        while True:
            if expect_value:
                self.skip_ws()
                if self.pos >= self.n:
                    raise _Bad("expected a value")
                ch = self.text[self.pos]
                if len(stack) < _TRACK_DEPTH:
                    positions.setdefault(value_path, self._lineno(self.pos) + 1)
                if ch in "\"'":
                    self.string()
                elif ch == "[":
                    self.pos += 1
                    stack.append(["array", value_path, 0])
                    self.depth_reached(len(stack), value_path)
                    self.skip_blank()
                    if self.text.startswith("]", self.pos):
                        self.pos += 1
                        stack.pop()
                    else:
                        value_path = value_path + (0,) if len(stack) < _TRACK_DEPTH else value_path
                        stack[-1][2] = 1
                        continue
                elif ch == "{":
                    self.pos += 1
                    stack.append(["table", value_path])
                    self.depth_reached(len(stack), value_path)
                    self.skip_ws()
                    if self.text.startswith("}", self.pos):
                        self.pos += 1
                        stack.pop()
                    else:
                        value_path = self.inline_key(value_path, len(stack) < _TRACK_DEPTH)
                        continue
                else:
                    self.scalar(value_path)
                expect_value = False
            # after a value: close containers or move to the next element / key
            if not stack:
                return
            top = stack[-1]
            if top[0] == "array":
                self.skip_blank()
                if self.pos >= self.n:
                    raise _Bad("unterminated array")
                ch = self.text[self.pos]
                if ch == ",":
                    self.pos += 1
                    self.skip_blank()
                    if self.text.startswith("]", self.pos):
                        self.pos += 1
                        stack.pop()
                        continue
                    value_path = top[1] + (top[2],) if len(stack) < _TRACK_DEPTH else top[1]
                    top[2] += 1
                    expect_value = True
                elif ch == "]":
                    self.pos += 1
                    stack.pop()
                else:
                    raise _Bad("expected ',' or ']' in an array")
            else:
                self.skip_ws()
                if self.pos >= self.n:
                    raise _Bad("unterminated inline table")
                ch = self.text[self.pos]
                if ch == ",":
                    self.pos += 1
                    value_path = self.inline_key(top[1], len(stack) < _TRACK_DEPTH)
                    expect_value = True
                elif ch == "}":
                    self.pos += 1
                    stack.pop()
                else:
                    raise _Bad("expected ',' or '}' in an inline table")

    def inline_key(self, table_path: Path, track: bool = True) -> Path:
        """`key =` inside an inline table; returns the key's full path (pos after '=')."""
        start = self.pos
        keys = self.dotted_key()
        self.skip_ws()
        if not self.text.startswith("=", self.pos):
            raise _Bad("expected '=' after a key")
        self.pos += 1
        if not track:
            return table_path
        full = table_path + keys
        for end in range(len(table_path) + 1, len(full) + 1):
            self.out.positions.setdefault(full[:end], self._lineno(start) + 1)
        return full

    # ---- statements ----------------------------------------------------------------------
    def resolve(self, names: tuple[str, ...]) -> Path:
        """Header names to a path, following the latest element of each array of tables."""
        out: Path = ()
        for name in names:
            out = out + (name,)
            if out in self.array_counts:
                out = out + (self.array_counts[out] - 1,)
        return out

    def statement(self) -> None:
        start = self.pos
        first_line = self._lineno(start)
        text = self.text
        if text.startswith("[", self.pos):
            is_array = text.startswith("[[", self.pos)
            self.pos += 2 if is_array else 1
            names = self.dotted_key()
            self.current = names
            self.skip_ws()
            close = "]]" if is_array else "]"
            if not text.startswith(close, self.pos):
                raise _Bad("unterminated table header")
            self.pos += len(close)
            if is_array:
                parent = self.resolve(names[:-1])
                base = parent + (names[-1],)
                index = self.array_counts.get(base, 0)
                self.array_counts[base] = index + 1
                path = base + (index,)
                self.out.positions.setdefault(base, first_line + 1)
            else:
                path = self.resolve(names)
            self.table = path
            for end in range(1, len(path) + 1):
                self.out.positions.setdefault(path[:end], first_line + 1)
            self.out.statements.append(
                Statement("array" if is_array else "table", names, path, first_line, first_line)
            )
            self.end_of_statement()
            return
        keys = self.dotted_key()
        self.current = self.table + keys
        self.skip_ws()
        if not text.startswith("=", self.pos):
            raise _Bad("expected '=' after a key")
        self.pos += 1
        full = self.table + keys
        for end in range(len(self.table) + 1, len(full) + 1):
            self.out.positions.setdefault(full[:end], first_line + 1)
        self.skip_ws()
        value_start = self.pos
        self.value(full)
        value_end = self.pos
        st = Statement("keyval", keys, full, first_line, self._lineno(max(value_start, value_end - 1)), value_start, value_end)
        self.out.statements.append(st)
        self.end_of_statement()

    def simple_statement(self, line: int) -> bool:
        """Fast path for the common one-line `key = value` and `[header]` (no nesting, no
        multi-line strings); anything else goes through `statement`."""
        text = self.text
        m = _SIMPLE_KEYVAL.match(text, self.pos)
        if m:
            full = self.table + (m.group(1),)
            if m.end(2) - m.start(2) > LONG_SCALAR and text[m.start(2)] not in "\"'":
                self.out.long_scalars.append((line + 1, full))
            positions = self.out.positions
            if full not in positions:
                positions[full] = line + 1
            if self.keep:
                self.out.statements.append(Statement("keyval", (m.group(1),), full, line, line, m.start(2), m.end(2)))
            self.pos = m.end()
            return True
        m = _SIMPLE_HEADER.match(text, self.pos)
        if m:
            is_array = m.group(1) == "[["
            if is_array != (m.group(3) == "]]"):
                return False
            names = tuple(part.strip() for part in m.group(2).split("."))
            self.current = names
            if is_array:
                base = self.resolve(names[:-1]) + (names[-1],)
                index = self.array_counts.get(base, 0)
                self.array_counts[base] = index + 1
                path = base + (index,)
                self.out.positions.setdefault(base, line + 1)
            else:
                path = self.resolve(names)
            self.table = path
            for end in range(1, len(path) + 1):
                self.out.positions.setdefault(path[:end], line + 1)
            self.out.statements.append(Statement("array" if is_array else "table", names, path, line, line))
            self.pos = m.end()
            return True
        return False

    def end_of_statement(self) -> None:
        self.skip_ws()
        self.skip_comment()
        if self.pos < self.n and not self.at_newline():
            raise _Bad("expected the end of the line")

    def run(self) -> Scan:
        text = self.text
        while self.pos < self.n:
            blank = _BLANK_LINES.match(text, self.pos)  # many comment/blank lines in one step
            if blank and blank.end() > self.pos:
                self.pos = blank.end()
                continue
            self.skip_ws()
            self.skip_comment()
            if self.pos >= self.n:
                break
            if self.at_newline():
                self.skip_newline()
                continue
            line_before = self._lineno(self.pos)
            if self.fast and self.simple_statement(line_before):
                continue
            self.current = None
            try:
                self.statement()
            except _Bad:
                self.out.failures.append((line_before + 1, self.current))
                # resynchronise: continue at the line after the one where scanning failed
                line = max(line_before, self._lineno(min(self.pos, self.n - 1)) if self.n else 0)
                starts = self.out.line_starts
                self.pos = starts[line + 1] if line + 1 < len(starts) else self.n
                continue
            self.skip_newline()
            if self.pos < self.n and text[self.pos] == "\r":
                self.pos += 1
        return self.out


def scan(text: str, keep_statements: bool = True) -> Scan:
    """Statements, key positions and nesting depth of a TOML text (best effort, never raises).

    `keep_statements=False` skips the list of one-line key/value statements (positions,
    depth and failures are still complete): faster when only lines are wanted.
    """
    return _Scanner(text, keep_statements).run()


def locate(text: str) -> dict[Path, int]:
    """Map every key path (with array indices) to its 1-based line."""
    return scan(text, keep_statements=False).positions


def dotted(path: Path) -> str:
    """`("script", 3, "at")` -> `script[3].at`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = part if _BARE_KEY.fullmatch(part) else '"' + part.replace("\\", "\\\\").replace('"', '\\"') + '"'
            out += ("." if out else "") + name
    return out
