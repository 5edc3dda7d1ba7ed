"""Scenario text editor: line numbers, TOML highlighting, validation errors at their line.

Validation runs `lazytsc.scenario.check_scenario` (every error, each with its
line) a moment after typing stops. Lines with errors get a red background and
a marker in the gutter; the error list under the editor jumps to a line on
click. Apply (Ctrl+Return) asks the window to run the text without saving.
"""

from __future__ import annotations

import re

from lazytsc.scenario import ScenarioError
from PySide6 import QtCore, QtGui, QtWidgets

from . import themes
from .scenario_io import check_text

NEW_SCENARIO = '''# A new lazytsc scenario (format 1). Apply with Ctrl+Return; save with Ctrl+S.
format = 1
name = "untitled"
description = "One vCPU programs its clockevent three times before the first deadline."
vcpus = 1
duration = "300us"
mode = "both"

[[script]]
at = "10us"
op = "set_next_event"
delta = "100us"

[[script]]
at = "20us"
op = "set_next_event"
delta = "100us"

[[script]]
at = "30us"
op = "set_next_event"
delta = "100us"
'''


class TomlHighlighter(QtGui.QSyntaxHighlighter):
    """Enough TOML colouring to read a scenario: tables, keys, strings, numbers, comments."""

    RULES = (
        ("table", re.compile(r"^\s*\[\[?[^\]]+\]\]?")),
        ("key", re.compile(r"^\s*[A-Za-z0-9_\-\.\"']+(?=\s*=)")),
        ("number", re.compile(r"(?<![\w.])(0x[0-9a-fA-F_]+|0b[01_]+|-?\d[\d_]*(\.\d+)?)(?![\w.])")),
        ("bool", re.compile(r"\b(true|false)\b")),
        ("string", re.compile(r"\"(\\.|[^\"\\])*\"|'[^']*'")),
        ("comment", re.compile(r"#.*$")),
    )

    def __init__(self, document: QtGui.QTextDocument) -> None:
        super().__init__(document)
        self._formats: dict[str, QtGui.QTextCharFormat] = {}
        self.set_theme(themes.current())

    def set_theme(self, theme) -> None:
        dark = theme.name == "dark"
        colours = {
            "table": "#ffcb6b" if dark else "#795e26",
            "key": "#82aaff" if dark else "#0451a5",
            "number": "#f78c6c" if dark else "#098658",
            "bool": "#c792ea" if dark else "#af00db",
            "string": "#c3e88d" if dark else "#a31515",
            "comment": "#697098" if dark else "#008000",
        }
        self._formats = {}
        for name, colour in colours.items():
            fmt = QtGui.QTextCharFormat()
            fmt.setForeground(QtGui.QColor(colour))
            if name == "table":
                fmt.setFontWeight(QtGui.QFont.Weight.Bold)
            if name == "comment":
                fmt.setFontItalic(True)
            self._formats[name] = fmt
        self.rehighlight()

    def highlightBlock(self, text: str) -> None:
        if self.previousBlockState() == 1:  # inside a multi-line string
            end = text.find('"""')
            self.setFormat(0, len(text) if end < 0 else end + 3, self._formats["string"])
            self.setCurrentBlockState(1 if end < 0 else 0)
            if end < 0:
                return
        else:
            self.setCurrentBlockState(0)
        for name, rx in self.RULES:
            for m in rx.finditer(text):
                self.setFormat(m.start(), m.end() - m.start(), self._formats[name])
        start = text.find('"""')
        if start >= 0 and text.count('"""') % 2 == 1 and self.previousBlockState() != 1:
            self.setFormat(start, len(text) - start, self._formats["string"])
            self.setCurrentBlockState(1)


class _Gutter(QtWidgets.QWidget):
    def __init__(self, editor: CodeEditor) -> None:
        super().__init__(editor)
        self.editor = editor

    def sizeHint(self) -> QtCore.QSize:
        return QtCore.QSize(self.editor.gutter_width(), 0)

    def paintEvent(self, event: QtGui.QPaintEvent) -> None:
        self.editor.paint_gutter(event)


class CodeEditor(QtWidgets.QPlainTextEdit):
    """QPlainTextEdit with a line-number gutter and error lines (Qt's code-editor pattern)."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        font = QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.SystemFont.FixedFont)
        self.setFont(font)
        self.setLineWrapMode(QtWidgets.QPlainTextEdit.LineWrapMode.NoWrap)
        self.setTabStopDistance(self.fontMetrics().horizontalAdvance(" ") * 4)
        self.gutter = _Gutter(self)
        self.errors: dict[int, str] = {}  # 1-based line -> message
        self.blockCountChanged.connect(self._update_margins)
        self.updateRequest.connect(self._update_gutter)
        self.cursorPositionChanged.connect(self._update_selections)
        self._update_margins()
        self.highlighter = TomlHighlighter(self.document())

    def gutter_width(self) -> int:
        digits = max(3, len(str(max(1, self.blockCount()))))
        return 14 + self.fontMetrics().horizontalAdvance("9") * digits

    def _update_margins(self, _n: int = 0) -> None:
        self.setViewportMargins(self.gutter_width(), 0, 0, 0)

    def _update_gutter(self, rect: QtCore.QRect, dy: int) -> None:
        if dy:
            self.gutter.scroll(0, dy)
        else:
            self.gutter.update(0, rect.y(), self.gutter.width(), rect.height())

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:
        super().resizeEvent(event)
        cr = self.contentsRect()
        self.gutter.setGeometry(QtCore.QRect(cr.left(), cr.top(), self.gutter_width(), cr.height()))

    def paint_gutter(self, event: QtGui.QPaintEvent) -> None:
        th = themes.current()
        painter = QtGui.QPainter(self.gutter)
        painter.fillRect(event.rect(), QtGui.QColor(th.alt_base))
        block = self.firstVisibleBlock()
        number = block.blockNumber()
        top = round(self.blockBoundingGeometry(block).translated(self.contentOffset()).top())
        bottom = top + round(self.blockBoundingRect(block).height())
        h = self.fontMetrics().height()
        while block.isValid() and top <= event.rect().bottom():
            if block.isVisible() and bottom >= event.rect().top():
                line = number + 1
                if line in self.errors:
                    painter.setPen(QtCore.Qt.PenStyle.NoPen)
                    painter.setBrush(QtGui.QColor(th.error_fg))
                    painter.drawEllipse(QtCore.QRectF(3, top + h / 2 - 4, 8, 8))
                    painter.setPen(QtGui.QColor(th.error_fg))
                else:
                    painter.setPen(QtGui.QColor(th.dim_text))
                painter.drawText(0, top, self.gutter.width() - 4, h, int(QtCore.Qt.AlignmentFlag.AlignRight), str(line))
            block = block.next()
            top = bottom
            bottom = top + round(self.blockBoundingRect(block).height())
            number += 1
        painter.end()

    def set_errors(self, errors: dict[int, str]) -> None:
        self.errors = dict(errors)
        self._update_selections()
        self.gutter.update()

    def _update_selections(self) -> None:
        th = themes.current()
        sels = []
        for line, message in sorted(self.errors.items()):
            block = self.document().findBlockByNumber(line - 1)
            if not block.isValid():
                continue
            sel = QtWidgets.QTextEdit.ExtraSelection()
            sel.format.setBackground(QtGui.QColor(th.error_bg))
            sel.format.setProperty(QtGui.QTextFormat.Property.FullWidthSelection, True)
            sel.format.setToolTip(message)
            sel.cursor = QtGui.QTextCursor(block)
            sels.append(sel)
        self.setExtraSelections(sels)

    def goto_line(self, line: int) -> None:
        block = self.document().findBlockByNumber(max(0, line - 1))
        if block.isValid():
            cursor = QtGui.QTextCursor(block)
            self.setTextCursor(cursor)
            self.centerCursor()
            self.setFocus()

    def event(self, ev: QtCore.QEvent) -> bool:
        if ev.type() == QtCore.QEvent.Type.ToolTip:
            cursor = self.cursorForPosition(self.viewport().mapFromGlobal(ev.globalPos()))
            line = cursor.blockNumber() + 1
            if line in self.errors:
                QtWidgets.QToolTip.showText(ev.globalPos(), self.errors[line], self)
                return True
        return super().event(ev)


class ScenarioEditor(QtWidgets.QWidget):
    """The editor pane: banner, code editor, error list, Apply/Revert."""

    applyRequested = QtCore.Signal()
    modificationChanged = QtCore.Signal(bool)
    pathologicalInput = QtCore.Signal(str)  # input too deeply nested / too large to check

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.path = ""
        self.saved_text = ""
        self.banner = QtWidgets.QLabel("")
        self.banner.setWordWrap(True)
        self.banner.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.editor = CodeEditor()
        self.error_list = QtWidgets.QListWidget()
        self.error_list.setSizePolicy(QtWidgets.QSizePolicy.Policy.Preferred, QtWidgets.QSizePolicy.Policy.Fixed)
        self.error_list.itemActivated.connect(self._jump_to_error)
        self.error_list.itemClicked.connect(self._jump_to_error)
        self.apply_btn = QtWidgets.QPushButton("Apply (Ctrl+Return)")
        self.apply_btn.setToolTip("Run the edited scenario (without saving)")
        self.revert_btn = QtWidgets.QPushButton("Revert")
        self.revert_btn.setToolTip("Back to the text last opened or saved")
        self.status = QtWidgets.QLabel("")
        buttons = QtWidgets.QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addWidget(self.status, 1)
        buttons.addWidget(self.revert_btn)
        buttons.addWidget(self.apply_btn)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(3)
        layout.addWidget(self.banner)
        layout.addWidget(self.editor, 1)
        layout.addWidget(self.error_list)
        layout.addLayout(buttons)
        self.apply_btn.clicked.connect(self.applyRequested)
        self.revert_btn.clicked.connect(self.revert)
        QtGui.QShortcut(QtGui.QKeySequence("Ctrl+Return"), self.editor, activated=self.applyRequested.emit)
        self._timer = QtCore.QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(350)
        self._timer.timeout.connect(self.validate)
        self.editor.textChanged.connect(self._timer.start)
        self.editor.document().modificationChanged.connect(self.modificationChanged)
        self.errors: list[ScenarioError] = []
        themes.manager().changed.connect(self._theme_changed)
        self.set_banner("")

    # ---- document -----------------------------------------------------------------------------
    def text(self) -> str:
        return self.editor.toPlainText()

    def set_document(self, text: str, path: str = "", modified: bool = False) -> None:
        self.path = path
        self.saved_text = text
        self.editor.setPlainText(text)
        self.editor.document().setModified(modified)
        self.validate()

    def replace_text(self, text: str) -> None:
        """Replace everything as one undoable edit (bookmarks written into the scenario)."""
        cursor = QtGui.QTextCursor(self.editor.document())
        cursor.beginEditBlock()
        cursor.select(QtGui.QTextCursor.SelectionType.Document)
        cursor.insertText(text)
        cursor.endEditBlock()
        self.validate()

    def is_modified(self) -> bool:
        return self.editor.document().isModified()

    def mark_saved(self, path: str) -> None:
        self.path = path
        self.saved_text = self.text()
        self.editor.document().setModified(False)

    def revert(self) -> None:
        self.set_document(self.saved_text, self.path)

    # ---- validation -----------------------------------------------------------------------------
    def validate(self) -> list[ScenarioError]:
        self._timer.stop()
        text = self.text()
        if not text.strip():
            self.errors = []
            self.editor.set_errors({})
            self.error_list.clear()
            self.status.setText("empty")
            return []
        _sc, errors, pathological = check_text(text, self.path or "untitled.toml")
        self.show_errors(errors)
        if pathological and errors:
            if errors[0].line:
                self.editor.goto_line(errors[0].line)
            self.pathologicalInput.emit(str(errors[0]))
        return errors

    def show_errors(self, errors: list[ScenarioError]) -> None:
        self.errors = list(errors)
        lines: dict[int, str] = {}
        for e in errors:
            line = e.line or 1
            lines[line] = (lines[line] + "\n" if line in lines else "") + str(e)
        self.editor.set_errors(lines)
        self.error_list.clear()
        th = themes.current()
        for e in errors:
            item = QtWidgets.QListWidgetItem(str(e))
            item.setData(QtCore.Qt.ItemDataRole.UserRole, e.line or 1)
            item.setForeground(QtGui.QColor(th.error_fg))
            self.error_list.addItem(item)
        self.error_list.setVisible(bool(errors))
        row = self.error_list.sizeHintForRow(0) if errors else 0
        self.error_list.setFixedHeight(min(3, len(errors)) * max(row, 1) + 6 if errors else 0)
        self.status.setText(f"{len(errors)} error(s)" if errors else "valid")

    def _jump_to_error(self, item: QtWidgets.QListWidgetItem) -> None:
        self.editor.goto_line(int(item.data(QtCore.Qt.ItemDataRole.UserRole)))

    def set_banner(self, html: str) -> None:
        self.banner.setText(html)
        self.banner.setVisible(bool(html))

    def _theme_changed(self, theme) -> None:
        self.editor.highlighter.set_theme(theme)
        self.show_errors(self.errors)
