"""Event formats as the kernel describes them (`events/<system>/<event>/format`).

Why parse the file's own formats: field offsets and sizes change between kernels (e.g.
`kvm_exit` gained `vcpu_id`, `intr_info` and `error_code` in 5.12), so the binary layout
is read from the format text stored in the trace.dat, never assumed. The symbolic
tables of `__print_symbolic(REC->field, { value, "NAME" }, ...)` in the print format
name the exit reasons exactly as the recording kernel would have printed them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_FIELD_RE = re.compile(
    r"field:\s*(?P<decl>[^;]+);\s*offset:\s*(?P<off>\d+);\s*size:\s*(?P<size>\d+);"
    r"(?:\s*signed:\s*(?P<signed>\d+);)?"
)
_SYMBOLIC_RE = re.compile(r"__print_symbolic\(\s*REC->(\w+)[^,]*,")
_PAIR_RE = re.compile(r"\{\s*(-?(?:0x[0-9a-fA-F]+|\d+))\s*(?:[uUlL]*)\s*,\s*\"([^\"]*)\"\s*\}")


@dataclass(frozen=True)
class Field:
    name: str
    offset: int
    size: int
    signed: bool
    decl: str

    @property
    def dynamic(self) -> bool:
        """`__data_loc` fields hold (length << 16 | offset) of data later in the record."""
        return "__data_loc" in self.decl


@dataclass
class EventFormat:
    system: str
    name: str
    id: int
    fields: dict[str, Field] = field(default_factory=dict)
    print_fmt: str = ""
    # field name -> list of {value: name} tables found in the print format, in order
    symbols: dict[str, list[dict[int, str]]] = field(default_factory=dict)

    def field(self, name: str) -> Field | None:
        return self.fields.get(name)


def _field_name(decl: str) -> str:
    decl = re.sub(r"\[[^\]]*\]", "", decl).strip()
    return re.split(r"[\s*]+", decl)[-1]


def _symbol_tables(print_fmt: str) -> dict[str, list[dict[int, str]]]:
    """Every `__print_symbolic(REC->f, {v, "n"}, ...)` table, by field name."""
    out: dict[str, list[dict[int, str]]] = {}
    for m in _SYMBOLIC_RE.finditer(print_fmt):
        # the pairs run until the parenthesis closing this __print_symbolic
        depth, i = 1, print_fmt.index("(", m.start()) + 1
        while i < len(print_fmt) and depth:
            ch = print_fmt[i]
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
            elif ch == '"':
                j = print_fmt.find('"', i + 1)
                i = j if j > 0 else len(print_fmt)
            i += 1
        table = {}
        for v, n in _PAIR_RE.findall(print_fmt[m.end() : i]):
            try:
                table[int(v, 0)] = n
            except ValueError:
                continue
        if table:
            out.setdefault(m.group(1), []).append(table)
    return out


def parse_format(system: str, text: str) -> EventFormat | None:
    """One format file; None when it has no name or ID (not an event)."""
    name = re.search(r"^name:\s*(\S+)", text, re.M)
    ident = re.search(r"^ID:\s*(\d+)", text, re.M)
    if name is None or ident is None:
        return None
    fmt = EventFormat(system, name.group(1), int(ident.group(1)))
    for m in _FIELD_RE.finditer(text):
        decl = m.group("decl").strip()
        f = Field(_field_name(decl), int(m.group("off")), int(m.group("size")),
                  m.group("signed") == "1", decl)
        fmt.fields[f.name] = f
    pm = re.search(r"^print fmt:\s*(.*)$", text, re.M | re.S)
    if pm:
        fmt.print_fmt = pm.group(1).strip()
        fmt.symbols = _symbol_tables(fmt.print_fmt)
    return fmt


def header_page_layout(text: str) -> tuple[int, int, int]:
    """(commit offset, commit size, data offset) of a ring-buffer page from `header_page`."""
    commit_off, commit_size, data_off = 8, 8, 16
    for m in _FIELD_RE.finditer(text):
        name = _field_name(m.group("decl"))
        if name == "commit":
            commit_off, commit_size = int(m.group("off")), int(m.group("size"))
        elif name == "data":
            data_off = int(m.group("off"))
    return commit_off, commit_size, data_off
