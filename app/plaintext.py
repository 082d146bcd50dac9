"""Model, page and server text in Qt places that would otherwise read it as markup.

QLabel, QMessageBox and tooltips guess: text that looks like HTML is rendered as HTML, so a
thought like `<b><font size=7>All done - safe to leave` or `<img src=...>` would restyle the
app or load an image. Labels get `plain()`; the strings for places that have no plain-text
switch (tooltips, menu entries, desktop notifications) come from the functions below.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import Qt as QtGuiNamespace
from PySide6.QtWidgets import QLabel, QMessageBox

from agent.termtext import visible

# Desktop notification servers (freedesktop body-markup) read <, > and & as markup and give
# us no way to say "plain"; look-alikes read the same to a person and mean nothing to a parser.
_NOTIFICATION_LOOKALIKES = str.maketrans({"<": "\u2039", ">": "\u203a", "&": "\uff06"})


def plain(widget: QLabel | QMessageBox) -> QLabel | QMessageBox:
    """`widget` set to show its text as typed, never as rich text."""
    widget.setTextFormat(Qt.TextFormat.PlainText)
    return widget


def tooltip(text: str) -> str:
    """A tooltip string that shows `text` literally (tooltips have no plain-text switch)."""
    return QtGuiNamespace.convertFromPlainText(visible(text), Qt.WhiteSpaceMode.WhiteSpacePre)


def menu_label(text: str) -> str:
    """`text` for a menu entry: one line, `&` shown (not a shortcut), tabs shown."""
    return visible(text, multiline=False).replace("&", "&&")


def notification(text: str) -> str:
    """`text` for a desktop notification: nothing in it can be read as markup."""
    return visible(text).translate(_NOTIFICATION_LOOKALIKES)
