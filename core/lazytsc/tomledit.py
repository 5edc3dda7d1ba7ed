"""Rewrite one array of tables (`[[bookmark]]`, `[[breakpoint]]`) and keep every other byte.

The user's file is theirs: comments, blank lines, key order, quoting and number
spelling outside the edited entries survive byte for byte. Inside the array the
edit is as small as it can be:

* entries that did not change keep their text (comments included);
* a changed entry keeps its header, comments and unchanged keys; a changed value is
  replaced in place (its key, spacing and trailing comment stay); a key set back to
  its default is removed; a new key goes after the entry's last key;
* a removed entry loses its header and its own lines (and one blank line that only
  separated it); comments above its header stay;
* a new entry is inserted where it belongs among the others (after the last entry
  when it comes last; at the end of the file when the array is new).

Entries are matched old-to-new by content (a sequence diff), so removing the first
of three breakpoints does not move the comments of the other two. An array written
inline (`bookmark = [{...}]`) is rewritten in place, its comments kept above it.

The result is checked before it is returned: it must parse, hold exactly the new
entries, and every other value of the document must be unchanged. Anything else
raises TomlEditError; a caller never gets a damaged document.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .tomlscan import Statement, scan

Entry = Mapping[str, Any]


class TomlEditError(ValueError):
    """The text cannot be edited safely (not valid TOML, or the array is not an array)."""


# ---- writing values ---------------------------------------------------------------------
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def toml_string(value: str) -> str:
    """A TOML basic string: quotes, backslashes and every control character escaped."""
    out = ['"']
    for ch in value:
        code = ord(ch)
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04X}")
        elif 0xD800 <= code <= 0xDFFF:
            raise TomlEditError(f"a string with a lone surrogate (U+{code:04X}) cannot be written as TOML")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def toml_value(value: Any) -> str:
    """TOML text for a str, bool, int or float."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    raise TomlEditError(f"cannot write a {type(value).__name__} value")


# ---- the edit ---------------------------------------------------------------------------
_LINE = re.compile(r"[^\n]*\n|[^\n]+\Z")


def split_lines(text: str) -> list[str]:
    """Lines with their endings, split at "\n" only (TOML's newline; `str.splitlines` also
    splits at U+0085, U+2028 and others, which TOML strings may hold)."""
    return _LINE.findall(text)


Normalizer = Callable[[Any], Any]


class _Spec:
    """How to compare and omit the keys of one array's entries."""

    def __init__(self, defaults: Mapping[str, Any], normalize: Mapping[str, Normalizer]) -> None:
        self.defaults = defaults
        self.normalize = normalize

    def norm(self, key: str, value: Any) -> Any:
        fn = self.normalize.get(key)
        if fn is not None:
            try:
                value = fn(value)
            except (TypeError, ValueError):
                return ("<unnormalizable>", repr(value))
        tag = "bool" if isinstance(value, bool) else "v"
        try:
            hash(value)
        except TypeError:
            return (tag, repr(value))
        return (tag, value)

    def same(self, key: str, old: Any, new: Any) -> bool:
        return self.norm(key, old) == self.norm(key, new)

    def is_default(self, key: str, value: Any) -> bool:
        return value is None or (key in self.defaults and self.same(key, self.defaults[key], value))

    def identity(self, entry: Mapping[str, Any], keys: Sequence[str]) -> tuple:
        """What an entry means, for matching old entries to new ones."""
        out = []
        for key in keys:
            value = entry.get(key)
            if self.is_default(key, value):
                out.append((key, None))
            else:
                out.append((key, self.norm(key, value)))
        return tuple(out)


class _Block:
    """One `[[name]]` entry in header form: its line span and its own key statements."""

    def __init__(self, header: Statement) -> None:
        self.header = header
        self.statements: list[Statement] = []  # key/values of the entry's own table
        self.end_line = header.end_line  # last line of the entry's content

    def own_key(self, key: str) -> Statement | None:
        for st in self.statements:
            if st.keys == (key,):
                return st
        return None


def replace_array(
    text: str,
    name: str,
    entries: Sequence[Entry],
    key_order: Sequence[str],
    defaults: Mapping[str, Any] | None = None,
    normalize: Mapping[str, Normalizer] | None = None,
) -> str:
    """Return `text` with the top-level array of tables `name` holding exactly `entries`.

    `key_order`: the keys the caller manages, in the order new entries write them.
    A value of None, or equal to its `defaults` entry, means "leave the key out".
    `normalize[key]` maps a stored value to a comparable one (`"250us"` -> 250000),
    so an entry written by hand is not rewritten just because its spelling differs.
    """
    if text.startswith("\ufeff"):  # a byte-order mark stays where it is, outside the edit
        return "\ufeff" + replace_array(text[1:], name, entries, key_order, defaults, normalize)
    spec = _Spec(defaults or {}, normalize or {})
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TomlEditError(f"the text is not valid TOML ({exc})") from None
    except RecursionError:
        raise TomlEditError("the text is not valid TOML (nested too deeply)") from None
    old_values = data.get(name, [])
    if not isinstance(old_values, list) or not all(isinstance(v, dict) for v in old_values):
        raise TomlEditError(f"`{name}` is not an array of tables")
    newline = "\r\n" if text.count("\r\n") * 2 > text.count("\n") else "\n"
    lines = split_lines(text)
    info = scan(text)
    blocks, inline = _find_array(info.statements, name, len(old_values))
    new_entries = [dict(e) for e in entries]
    if inline is not None:
        out = _rewrite_inline(lines, inline, new_entries, key_order, spec, newline)
    elif not blocks:
        out = _append_new_array(lines, name, new_entries, key_order, spec, newline)
    else:
        out = _edit_blocks(lines, name, blocks, old_values, new_entries, key_order, spec, newline)
    result = "".join(out)
    _verify(result, data, name, new_entries, key_order, spec)
    return result


def _find_array(statements: list[Statement], name: str, count: int) -> tuple[list[_Block], Statement | None]:
    blocks: list[_Block] = []
    inline: Statement | None = None
    current: _Block | None = None
    for st in statements:
        if st.kind in ("table", "array"):
            if st.kind == "array" and st.keys == (name,):
                current = _Block(st)
                blocks.append(current)
                continue
            if current is not None and st.keys[:1] == (name,) and len(st.keys) > 1:
                current.end_line = st.end_line  # a sub-table of the current entry
                continue
            current = None
            continue
        if current is not None:
            if st.path[:2] == current.header.path[:2] and len(st.path) == len(current.header.path) + 1:
                current.statements.append(st)
            current.end_line = st.end_line
        elif st.path == (name,):
            inline = st
    if inline is None and len(blocks) != count:
        raise TomlEditError(f"cannot find the {count} `[[{name}]]` tables in the text")
    return blocks, inline


def _render_entry(name: str, entry: Mapping[str, Any], key_order: Sequence[str], spec: _Spec, newline: str) -> list[str]:
    out = [f"[[{name}]]{newline}"]
    for key in key_order:
        value = entry.get(key)
        if not spec.is_default(key, value):
            out.append(f"{key} = {toml_value(value)}{newline}")
    return out


def _edit_blocks(
    lines: list[str],
    name: str,
    blocks: list[_Block],
    old_values: list[dict],
    new_entries: list[dict],
    key_order: Sequence[str],
    spec: _Spec,
    newline: str,
) -> list[str]:
    # Per line: replacement text (None = keep), and text inserted after the line.
    replace: dict[int, str] = {}
    after: dict[int, list[str]] = {}
    before_start: list[str] = []  # inserted before the first entry's leading comments
    old_ids = [spec.identity(v, key_order) for v in old_values]
    new_ids = [spec.identity(v, key_order) for v in new_entries]
    matcher = difflib.SequenceMatcher(a=old_ids, b=new_ids, autojunk=False)

    def insert_at(old_index: int, chunk: list[str]) -> None:
        """Insert new entries before old entry `old_index` (or after the last one)."""
        if old_index == 0:
            before_start.extend(chunk)
        else:
            after.setdefault(blocks[old_index - 1].end_line, []).extend([newline, *chunk])

    def delete_block(block: _Block) -> None:
        for i in range(block.header.start_line, block.end_line + 1):
            replace[i] = ""
        prev = block.header.start_line - 1
        nxt = block.end_line + 1
        if prev >= 0 and not lines[prev].strip() and (nxt >= len(lines) or not lines[nxt].strip()) and prev not in replace:
            replace[prev] = ""

    def edit_block(block: _Block, old: dict, new: dict) -> None:
        last_key_line = max((st.end_line for st in block.statements), default=block.header.end_line)
        added: list[str] = []
        for key in key_order:
            value = new.get(key)
            st = block.own_key(key)
            if st is None:
                if not spec.is_default(key, value):
                    added.append(f"{key} = {toml_value(value)}{newline}")
                continue
            if spec.is_default(key, value):
                # leave the key out, unless the file already spells this very default
                if value is None or not spec.same(key, old.get(key), value):
                    for i in range(st.start_line, st.end_line + 1):
                        replace[i] = ""
                continue
            if spec.same(key, old.get(key), value):
                continue
            _replace_value(lines, replace, st, toml_value(value))
        if added:
            tail = lines[last_key_line] if last_key_line < len(lines) else ""
            if tail and not tail.endswith("\n"):
                added.insert(0, newline)
            after.setdefault(last_key_line, []).extend(added)

    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        pairs = min(i2 - i1, j2 - j1) if tag == "replace" else 0
        for k in range(pairs):
            edit_block(blocks[i1 + k], old_values[i1 + k], new_entries[j1 + k])
        for k in range(i1 + pairs, i2):
            delete_block(blocks[k])
        if j1 + pairs < j2:
            chunk: list[str] = []
            for k in range(j1 + pairs, j2):
                if chunk:
                    chunk.append(newline)
                chunk.extend(_render_entry(name, new_entries[k], key_order, spec, newline))
            insert_at(i2, chunk)

    out: list[str] = []
    first_entry_line = _leading_comment_start(lines, blocks[0].header.start_line) if blocks else None
    for i, line in enumerate(lines):
        if i == first_entry_line and before_start:
            out.extend(before_start)
            out.append(newline)
        out.append(replace.get(i, line))
        extra = after.get(i)
        if extra:
            if not out[-1].endswith("\n") and out[-1]:
                out.append(newline)
            out.extend(extra)
    return out


def _leading_comment_start(lines: list[str], header_line: int) -> int:
    """The first line of the comment block directly above a header (no blank line between)."""
    i = header_line
    while i > 0 and lines[i - 1].lstrip().startswith("#"):
        i -= 1
    return i


def _replace_value(lines: list[str], replace: dict[int, str], st: Statement, new_value: str) -> None:
    """Replace a key/value's value in place, keeping the key, spacing and any trailing comment."""
    # offsets are into the whole text; rebuild from the statement's lines
    start_offset = sum(len(x) for x in lines[: st.start_line])
    chunk = "".join(lines[st.start_line : st.end_line + 1])
    a = st.value_start - start_offset
    b = st.value_end - start_offset
    replace[st.start_line] = chunk[:a] + new_value + chunk[b:]
    for i in range(st.start_line + 1, st.end_line + 1):
        replace[i] = ""


def _append_new_array(lines: list[str], name: str, new_entries: list[dict], key_order: Sequence[str], spec: _Spec, newline: str) -> list[str]:
    out = list(lines)
    if not new_entries:
        return out
    if out and not out[-1].endswith("\n"):
        out.append(newline)
    if out and out[-1].strip():
        out.append(newline)
    for k, entry in enumerate(new_entries):
        if k:
            out.append(newline)
        out.extend(_render_entry(name, entry, key_order, spec, newline))
    return out


def _rewrite_inline(lines: list[str], st: Statement, new_entries: list[dict], key_order: Sequence[str], spec: _Spec, newline: str) -> list[str]:
    """`name = [{...}, ...]` rewritten in place; comments inside it move above it."""
    comments = []
    for i in range(st.start_line, st.end_line + 1):
        hash_at = _comment_start(lines[i])
        if hash_at is not None:
            comments.append(lines[i][hash_at:].rstrip("\r\n") + newline)
    items = []
    for entry in new_entries:
        parts = [f"{k} = {toml_value(entry[k])}" for k in key_order if not spec.is_default(k, entry.get(k))]
        items.append("  { " + ", ".join(parts) + " }," + newline)
    body = f"{st.keys[0]} = [{newline}" + "".join(items) + "]" + newline if items else f"{st.keys[0]} = []{newline}"
    out = list(lines)
    out[st.start_line] = "".join(comments) + body
    for i in range(st.start_line + 1, st.end_line + 1):
        out[i] = ""
    return out


def _comment_start(line: str) -> int | None:
    """Index of a `#` comment in one physical line, ignoring `#` inside simple strings."""
    quote = ""
    i = 0
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == "\\" and quote == '"':
                i += 2
                continue
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return i
        i += 1
    return None


def _verify(result: str, before: dict, name: str, new_entries: list[dict], key_order: Sequence[str], spec: _Spec) -> None:
    try:
        after = tomllib.loads(result)
    except (tomllib.TOMLDecodeError, RecursionError) as exc:
        raise TomlEditError(f"internal error: the edited text does not parse ({exc})") from None
    got = after.get(name, [])
    if len(got) != len(new_entries) or any(
        spec.identity(g, key_order) != spec.identity(n, key_order) for g, n in zip(got, new_entries, strict=False)
    ):
        raise TomlEditError(f"internal error: the edited `{name}` entries differ from the ones asked for")
    rest_before = {k: v for k, v in before.items() if k != name}
    rest_after = {k: v for k, v in after.items() if k != name}
    if rest_before != rest_after:
        raise TomlEditError("internal error: the edit changed something outside the array")
