"""Bookmarks and breakpoints are written into the scenario text structurally.

The rule (team brief, "bad input"): rewriting a file never loses a line the user wrote.
The old regex rewrite erased everything after the first `[[bookmark]]` (in the default
scenario, all five `[[expect]]` blocks); these tests pin the replacement down.
"""

from __future__ import annotations

import tomllib

import pytest
from lazytsc.scenario import (
    Bookmark,
    BreakpointSpec,
    parse_scenario,
    with_bookmarks,
    with_breakpoints,
)
from lazytsc.tomledit import TomlEditError, replace_array, toml_string
from lazytsc_testkit import SCENARIOS

BUILTINS = sorted(SCENARIOS.glob("*.toml"))


def lines_in_order(needles: list[str], haystack: list[str]) -> bool:
    it = iter(haystack)
    return all(any(n == h for h in it) for n in needles)


@pytest.mark.parametrize("path", BUILTINS, ids=lambda p: p.stem)
def test_builtin_round_trip_is_byte_identical(path):
    text = path.read_text(encoding="utf-8")
    sc = parse_scenario(text, path.name)
    assert with_bookmarks(text, sc.bookmarks) == text
    assert with_breakpoints(text, sc.breakpoints) == text


@pytest.mark.parametrize("path", BUILTINS, ids=lambda p: p.stem)
def test_builtin_add_then_remove_bookmark_keeps_every_line(path):
    text = path.read_text(encoding="utf-8")
    sc = parse_scenario(text, path.name)
    marks = [*sc.bookmarks, Bookmark("here", 12_345, 7, "why")]
    added = with_bookmarks(text, marks)
    assert lines_in_order(text.splitlines(), added.splitlines())
    again = parse_scenario(added, path.name)
    assert again.bookmarks == marks
    assert again.expects == [type(e)(**{**vars(e), "line": e2.line}) for e, e2 in zip(sc.expects, again.expects, strict=True)]
    assert with_bookmarks(added, sc.bookmarks) == text


@pytest.mark.parametrize("path", BUILTINS, ids=lambda p: p.stem)
def test_builtin_add_then_remove_breakpoint_is_identity(path):
    text = path.read_text(encoding="utf-8")
    sc = parse_scenario(text, path.name)
    bps = [BreakpointSpec(kind="kick", condition="armed == 0", name="k"), *sc.breakpoints]
    added = with_breakpoints(text, bps)
    assert parse_scenario(added, path.name).breakpoints == bps
    assert lines_in_order(text.splitlines(), added.splitlines())
    assert with_breakpoints(added, sc.breakpoints) == text


def test_default_scenario_keeps_its_expect_blocks():
    """The reproducer: adding a bookmark to tcp_rr used to delete its [[expect]] tables."""
    text = (SCENARIOS / "tcp_rr.toml").read_text(encoding="utf-8")
    before = parse_scenario(text).expects
    after = parse_scenario(with_bookmarks(text, [Bookmark("x", 1000)])).expects
    assert len(after) == len(before) == len(tomllib.loads(text)["expect"])


DOC = """\
# top comment
format = 1
name = "demo"   # trailing comment

[[bookmark]]   # first
# inside the first
name = "one"
at = "250us"  # spelled with a unit

[[expect]]
what = "timer.spurious"
equals = 0

# about the second bookmark
[[bookmark]]
name = "two"
at = 500
note = '''literal
[[bookmark]] inside a string'''

[host]
exit_cost_ns = 600
"""


def test_unchanged_entries_keep_their_spelling_and_comments():
    sc = parse_scenario(DOC)
    assert [b.at for b in sc.bookmarks] == [250_000, 500]
    assert with_bookmarks(DOC, sc.bookmarks) == DOC


def test_changed_value_is_replaced_in_place_keeping_the_comment():
    sc = parse_scenario(DOC)
    out = with_bookmarks(DOC, [Bookmark("one", 300_000), sc.bookmarks[1]])
    assert 'at = 300000  # spelled with a unit\n' in out
    assert out.replace("at = 300000", 'at = "250us"') == DOC


def test_removing_the_first_entry_leaves_the_second_and_its_comment():
    sc = parse_scenario(DOC)
    out = with_bookmarks(DOC, [sc.bookmarks[1]])
    assert "# inside the first" not in out and '"one"' not in out
    assert "# about the second bookmark\n[[bookmark]]\nname = \"two\"" in out
    assert "[[bookmark]] inside a string'''" in out
    assert parse_scenario(out).bookmarks == [sc.bookmarks[1]]
    assert parse_scenario(out).expects[0].what == "timer.spurious"


def test_new_entry_goes_among_the_others_in_order():
    sc = parse_scenario(DOC)
    mid = Bookmark("middle", 400)
    out = with_bookmarks(DOC, [sc.bookmarks[0], mid, sc.bookmarks[1]])
    assert parse_scenario(out).bookmarks == [sc.bookmarks[0], mid, sc.bookmarks[1]]
    assert out.index('"middle"') < out.index("# about the second bookmark")
    assert lines_in_order(DOC.splitlines(), out.splitlines())


def test_key_set_back_to_default_is_removed_and_new_key_appended():
    sc = parse_scenario(DOC)
    two = sc.bookmarks[1]
    out = with_bookmarks(DOC, [sc.bookmarks[0], Bookmark(two.name, two.at, 42, "")])
    assert "note =" not in out and "inside a string" not in out
    assert parse_scenario(out).bookmarks[1] == Bookmark("two", 500, 42, "")


@pytest.mark.parametrize("name", ["\r", "\x00", "\x1b[31mred", "\x7f", "tab\there", "nl\nx", 'q"uote\\', "\u2028", "é ☃"])
def test_control_characters_in_names_are_escaped(name):
    """Names with \\r, NUL, ESC, DEL or any control character must still parse."""
    out = with_bookmarks("format = 1\n", [Bookmark(name, 5, None, name)])
    assert parse_scenario(out).bookmarks == [Bookmark(name, 5, None, name)]
    written = out.split("[[bookmark]]", 1)[1]
    assert all(ch == "\n" or ord(ch) >= 0x20 and ord(ch) != 0x7F for ch in written)


def test_toml_string_escapes_every_control_character():
    for code in [*range(0x20), 0x7F]:
        assert tomllib.loads(f"k = {toml_string(chr(code))}")["k"] == chr(code)


def test_crlf_documents_stay_crlf():
    text = DOC.replace("\n", "\r\n")
    sc = parse_scenario(text)
    out = with_bookmarks(text, [*sc.bookmarks, Bookmark("three", 9)])
    assert "\n" not in out.replace("\r\n", "")
    assert parse_scenario(out).bookmarks[-1].name == "three"


def test_no_trailing_newline():
    out = with_bookmarks("format = 1", [Bookmark("x", 1)])
    assert out.startswith("format = 1\n") and parse_scenario(out).bookmarks[0].name == "x"


def test_inline_array_is_rewritten_in_place():
    text = 'format = 1\nbookmark = [  # mine\n  { name = "a", at = 1 },\n]\n[host]\nexit_cost_ns = 5\n'
    out = with_bookmarks(text, [Bookmark("a", 1), Bookmark("b", 2)])
    assert "# mine" in out and out.endswith("[host]\nexit_cost_ns = 5\n")
    assert [b.name for b in parse_scenario(out).bookmarks] == ["a", "b"]


def test_breakpoints_written_back_and_defaults_omitted():
    text = "format = 1\n\n[[breakpoint]]\nkind = \"kick\"\nenabled = true\n"
    out = with_breakpoints(text, [BreakpointSpec(kind="kick", enabled=True), BreakpointSpec(exit="halt", vcpu=0, enabled=False)])
    assert 'enabled = true' in out  # the user's explicit default stays
    assert out.endswith('[[breakpoint]]\nexit = "halt"\nvcpu = 0\nenabled = false\n')
    out2 = with_breakpoints(out, [BreakpointSpec(kind="kick", condition="armed == 0")])
    assert parse_scenario(out2).breakpoints == [BreakpointSpec(kind="kick", condition="armed == 0")]


def test_invalid_text_is_refused_not_damaged():
    with pytest.raises(TomlEditError):
        with_bookmarks("format = 1\n[[bookmark\n", [Bookmark("x", 1)])
    with pytest.raises(TomlEditError):
        replace_array("bookmark = 3\n", "bookmark", [{"name": "x"}], ("name",))


def test_bookmark_without_time_round_trips():
    """Found by fuzzing: a bookmark written without `at` was rewritten with `at = 0`."""
    text = 'format = 1\n\n[[bookmark]]\nname = ""\n'
    assert with_bookmarks(text, parse_scenario(text).bookmarks) == text


@pytest.mark.parametrize("sep", ["\x85", "\u2028", "\u2029"])
def test_unicode_line_separators_inside_strings_are_not_line_ends(sep):
    """Found by fuzzing: str.splitlines() also splits at U+0085 and friends, which a TOML
    string may hold; the editor then cut entries in the wrong place."""
    text = f'[[bookmark]]\nname = "a{sep}b"\nnote = ""'
    assert with_bookmarks(text, []) == ""
    out = with_bookmarks(text, [Bookmark(f"a{sep}b", 0), Bookmark("z", 1)])
    assert out.startswith(text) and tomllib.loads(out)["bookmark"][1]["name"] == "z"


def test_byte_order_mark_is_kept_outside_the_edit():
    text = '\ufeffformat = 1\n'
    out = with_bookmarks(text, [Bookmark("x", 1)])
    assert out.startswith("\ufeffformat = 1\n") and parse_scenario(out).bookmarks == [Bookmark("x", 1)]
