"""The explanation pane beside the timeline: a demo's teaching text or a trace's summary."""

from __future__ import annotations

import html

from PySide6 import QtWidgets

from . import themes


class ExplainPanel(QtWidgets.QTextBrowser):
    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setOpenExternalLinks(True)
        self.markdown = ""
        themes.manager().changed.connect(self._on_theme)
        self._restyle()
        self.show_markdown("")

    def _on_theme(self, _theme) -> None:
        self._restyle()

    def _restyle(self) -> None:
        th = themes.current()
        self.document().setDefaultStyleSheet(
            f"code {{ color: {th.marks['pending']}; }} h1, h2, h3 {{ color: {th.text}; }} a {{ color: {th.link}; }}"
        )
        if self.markdown:
            self.setMarkdown(self.markdown)

    def show_markdown(self, text: str, title: str = "") -> None:
        body = text.strip() or "*No explanation for this scenario.* Add an `explain = \"\"\"...\"\"\"` field to it."
        self.markdown = (f"## {title}\n\n" if title else "") + body
        self.setMarkdown(self.markdown)

    def show_trace(self, summary: dict, path: str) -> None:
        lines = [f"## Trace: {html.escape(path)}", ""]
        for key in ("format", "lines", "parsed", "skipped"):
            if key in summary:
                lines.append(f"* **{key}**: {summary[key]:,}" if isinstance(summary[key], int) else f"* **{key}**: {summary[key]}")
        exits = summary.get("exits", {})
        if exits:
            lines.append(f"* **exits**: {exits.get('total', 0):,}")
        warnings = summary.get("warnings") or []
        if warnings:
            lines += ["", "**Warnings**", ""] + [f"* {w}" for w in warnings[:20]]
        lines += [
            "",
            "A recording is drawn like a simulated run: exits per reason, MSR 0x6e0 writes as",
            "\"v\" marks, timer interrupts. Stepping moves through the recorded events; breakpoints",
            "on kind, exit and vCPU work (conditions need a simulated run).",
            "",
            "Open the **Compare** tab for the *what-if* replay: the recorded deadlines fed through",
            "the lazy guest driver and host model.",
        ]
        self.markdown = "\n".join(lines)
        self.setMarkdown(self.markdown)
