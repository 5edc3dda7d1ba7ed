"""Fuzz the structural editor on generated TOML documents: no line the user wrote is lost.

Documents are built from segments (comments, root keys, tables, multi-line strings that
contain `[[bookmark]]` text, arrays over several lines, bookmark and breakpoint entries
with comments inside, CRLF, no final newline). Each edit replaces the entries by a
random variation of them (kept, changed, removed, inserted; names with control
characters) and must:

* parse, hold exactly the requested entries, change no other value;
* keep every segment that is not an entry of the edited array, byte for byte, in order;
* give back the original text byte for byte when the entries are unchanged.
"""

from __future__ import annotations

import tomllib

from fuzz_strategies import mutated_builtin, strings
from hypothesis import assume, given
from hypothesis import strategies as st
from lazytsc.scenario import Bookmark, BreakpointSpec, with_bookmarks, with_breakpoints
from lazytsc.tomledit import toml_string
from lazytsc.units import parse_duration
from lazytsc_fuzzkit import fuzz_settings, record, watchdog

AREA = "tomledit"

comment = st.text(alphabet="abc #[]=\"'\\é☃\t", max_size=20).map(lambda t: "#" + t)
other_segments = st.sampled_from(
    [
        "[host]\nexit_cost_ns = 600\n",
        "[host]  # trailing\nexit_cost_ns = 600 # six hundred\n",
        '[[expect]]\nwhat = "timer.spurious"\nequals = 0\n',
        'explain = """\n[[bookmark]]\nname = "inside a string"\n"""\n',
        "note = '''\n[[breakpoint]]\n'''\n",
        "arr = [\n  1,  # one\n  2,\n]\n",
        'inline = { a = 1, b = "[[bookmark]]" }\n',
        '[defaults]\ntsc_khz = 1_000_000\n"quoted key" = "x"\n',
        "[a.b]\nc = 1979-05-27 07:32:00\n",
        "",
        "\n",
    ]
)


@st.composite
def bookmark_entry(draw) -> str:
    lines = [draw(st.sampled_from(["[[bookmark]]", "[[bookmark]]  # mine", "[[ bookmark ]]"]))]
    keys = draw(st.permutations(["name", "at", "event", "note"]))
    for key in keys:
        if key != "name" and draw(st.booleans()):
            continue
        if draw(st.integers(0, 4)) == 0:
            lines.append(draw(comment))
        if key == "name":
            value = toml_string(draw(strings))
        elif key == "at":
            value = draw(st.sampled_from(["0", "250", '"250us"', '"1.5ms"', "1_000"]))
        elif key == "event":
            value = draw(st.sampled_from(["0", "7", "12345"]))
        else:
            value = draw(st.sampled_from(['""', '"n"', "'literal'", '"""multi\nline"""']))
        tail = draw(st.sampled_from(["", "", "  # why"]))
        lines.append(f"{key} = {value}{tail}")
    return "\n".join(lines) + "\n"


@st.composite
def breakpoint_entry(draw) -> str:
    lines = ["[[breakpoint]]"]
    for key, values in (
        ("name", ['"b"', '""', toml_string("\x1b[31m")]),
        ("kind", ['"kick"', '"spurious"']),
        ("exit", ['"halt"']),
        ("vcpu", ["0", "1"]),
        ("condition", ['"armed == 0"', "'kind == \"kick\"'"]),
        ("enabled", ["true", "false"]),
    ):
        if draw(st.booleans()):
            if draw(st.integers(0, 5)) == 0:
                lines.append(draw(comment))
            lines.append(f"{key} = {draw(st.sampled_from(values))}")
    return "\n".join(lines) + "\n"


@st.composite
def document(draw, entry) -> tuple[str, list[str]]:
    """(text, the segments that are not entries of the edited array)."""
    parts: list[tuple[bool, str]] = [(False, draw(st.sampled_from(["", "# header comment\n", "format = 1\n", "format = 1\nname = 'x'\n"])))]
    tables_started = False
    for _ in range(draw(st.integers(0, 7))):
        kind = draw(st.sampled_from(["entry", "entry", "other", "comment", "blank"]))
        if kind == "entry":
            parts.append((True, draw(entry)))
            tables_started = True
        elif kind == "other":
            seg = draw(other_segments)
            if not seg.startswith("[") and tables_started:
                continue  # a root key after a table would belong to that table
            tables_started = tables_started or seg.startswith("[")
            parts.append((False, seg))
        elif kind == "comment":
            parts.append((False, draw(comment) + "\n"))
        else:
            parts.append((False, "\n"))
    text = "".join(p for _, p in parts)
    if draw(st.booleans()):
        text = text.replace("\n", "\r\n")
        parts = [(e, p.replace("\n", "\r\n")) for e, p in parts]
    if draw(st.integers(0, 5)) == 0:
        text = text.rstrip("\r\n")
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        assume(False)
    return text, [p for is_entry, p in parts if not is_entry and p.strip()]


def as_bookmarks(data: dict) -> list[Bookmark]:
    return [Bookmark(b["name"], parse_duration(b.get("at", 0)), b.get("event"), b.get("note", "")) for b in data.get("bookmark", [])]


def as_breakpoints(data: dict) -> list[BreakpointSpec]:
    return [
        BreakpointSpec(b.get("kind", ""), b.get("exit", ""), b.get("vcpu"), b.get("condition", ""), b.get("enabled", True), b.get("name", ""))
        for b in data.get("breakpoint", [])
    ]


@st.composite
def variation(draw, items: list, make):
    out = [x for x in items if draw(st.integers(0, 3))]  # drop about a quarter
    for _ in range(draw(st.integers(0, 2))):
        out.insert(draw(st.integers(0, len(out))), draw(make))
    if out and draw(st.booleans()):
        i = draw(st.integers(0, len(out) - 1))
        out[i] = draw(make)
    return out


new_bookmark = st.builds(Bookmark, strings, st.integers(0, 10**12), st.one_of(st.none(), st.integers(0, 10**6)), strings)
new_breakpoint = st.builds(
    BreakpointSpec, st.sampled_from(["", "kick", "spurious"]), st.sampled_from(["", "halt"]), st.one_of(st.none(), st.integers(0, 3)),
    st.sampled_from(["", "armed == 0", "kind == 'kick'"]), st.booleans(), strings,
)  # fmt: skip


def check(text: str, others: list[str], name: str, old: list, new: list, edit) -> None:
    try:
        with watchdog(area=AREA):
            same = edit(text, old)
            out = edit(text, new)
    except Exception:
        record(AREA, "traceback")
        raise
    lost = same != text
    data_before, data_after = tomllib.loads(text), tomllib.loads(out)
    got = as_bookmarks(data_after) if name == "bookmark" else as_breakpoints(data_after)
    lost = lost or got != new
    lost = lost or {k: v for k, v in data_before.items() if k != name} != {k: v for k, v in data_after.items() if k != name}
    pos = 0
    for seg in others:
        seg = seg.rstrip("\r\n")  # the document's final newline may have been cut
        found = out.find(seg, pos)
        if found < 0:
            lost = True
            break
        pos = found + len(seg)
    record(AREA, "data loss" if lost else "accepted")
    assert same == text, "unchanged entries changed the text"
    assert got == new
    assert not lost, f"a segment the user wrote is gone: {seg!r}"


@fuzz_settings(AREA, small=200)
@given(document(bookmark_entry()), st.data())
def test_bookmarks_edit_keeps_everything_else(doc, data):
    text, others = doc
    old = as_bookmarks(tomllib.loads(text))
    new = data.draw(variation(old, new_bookmark))
    check(text, others, "bookmark", old, new, with_bookmarks)


@fuzz_settings(AREA, small=150)
@given(document(breakpoint_entry()), st.data())
def test_breakpoints_edit_keeps_everything_else(doc, data):
    text, others = doc
    old = as_breakpoints(tomllib.loads(text))
    new = data.draw(variation(old, new_breakpoint))
    check(text, others, "breakpoint", old, new, with_breakpoints)


# ---- the scanner's one-line fast path against its general path --------------------------------------
def _scan_both(text: str):
    from lazytsc.tomlscan import _Scanner

    fast, slow = _Scanner(text).run(), _Scanner(text, fast=False).run()
    shape = lambda sc: [(s.kind, s.keys, s.path, s.start_line, s.end_line, s.value_start, s.value_end) for s in sc.statements]  # noqa: E731
    assert fast.positions == slow.positions
    assert shape(fast) == shape(slow)
    assert (fast.max_depth, fast.failures, fast.long_scalars) == (slow.max_depth, slow.failures, slow.long_scalars)


@fuzz_settings(AREA, small=100)
@given(st.one_of(document(bookmark_entry()).map(lambda d: d[0]), mutated_builtin(), st.text(max_size=200)))
def test_scanner_fast_path_agrees_with_the_general_path(text):
    try:
        with watchdog(area=AREA):
            _scan_both(text)
    except AssertionError:
        record(AREA, "data loss")  # a wrong line or key in messages and edits
        raise
    record(AREA, "accepted")
