"""A test window for real-input tests: `python -m tests.support.apps.form_app STATE.json X Y`.

Every widget has its own solid colour (see COLOURS) so a scripted "model" can find it in the
screenshot it receives. The window writes its whole state as JSON to STATE.json (atomically)
on every change, and once at start with "ready": true.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

# RGB of each target; also imported by the tests to find them.
COLOURS = {
    "apply": (224, 32, 32),       # red button
    "cancel": (32, 64, 224),      # blue button
    "field": (32, 192, 64),       # green text field
    "list": (240, 240, 160),      # pale yellow list background
    "target_item": (224, 32, 224),  # magenta list item (starts scrolled out of view)
    "combo": (240, 144, 32),      # orange drop-down
    "target_entry": (32, 224, 224),  # cyan drop-down entry (visible only when open)
}
LIST_ITEMS = 40
TARGET_ITEM = 33
COMBO_ENTRIES = ("Alpha", "Bravo", "Charlie", "Delta")
TARGET_ENTRY = 3
WINDOW_SIZE = (900, 760)


def _css(rgb: tuple[int, int, int]) -> str:
    return "rgb({}, {}, {})".format(*rgb)


def main(argv: list[str]) -> int:
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QBrush, QColor, QKeySequence, QShortcut
    from PySide6.QtWidgets import (
        QApplication,
        QComboBox,
        QHBoxLayout,
        QLineEdit,
        QListView,
        QListWidget,
        QPushButton,
        QVBoxLayout,
        QWidget,
    )

    state_path = Path(argv[1])
    x, y = int(argv[2]), int(argv[3])
    app = QApplication([argv[0]])
    app.setStyle("Fusion")
    # A blinking caret or an animated pop-up never lets the screen settle: switch both off.
    app.setCursorFlashTime(0)
    app.setEffectEnabled(Qt.UIEffect.UI_AnimateCombo, False)
    state: dict = {"ready": False, "clicked": [], "text": "", "submitted": None,
                   "selected": None, "combo": COMBO_ENTRIES[0], "chords": 0}

    def save(**changes) -> None:
        state.update(changes)
        tmp = state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, state_path)

    window = QWidget()
    window.setWindowTitle("Deskhand test form")
    window.setStyleSheet("QWidget { background: rgb(250, 250, 250); font-size: 16px; }")
    layout = QVBoxLayout(window)

    buttons = QHBoxLayout()
    for name, label in (("apply", "Apply"), ("cancel", "Cancel")):
        button = QPushButton(label)
        button.setMinimumHeight(60)
        button.setStyleSheet(f"background: {_css(COLOURS[name])}; color: white; border: none;")
        button.clicked.connect(lambda _=False, n=name: save(clicked=[*state["clicked"], n]))
        buttons.addWidget(button)
    layout.addLayout(buttons)

    field = QLineEdit("old text")
    field.setMinimumHeight(50)
    field.setStyleSheet(f"background: {_css(COLOURS['field'])}; color: black; border: none;")
    field.textChanged.connect(lambda text: save(text=text))
    field.returnPressed.connect(lambda: save(submitted=field.text()))
    layout.addWidget(field)

    items = QListWidget()
    items.setFixedHeight(300)
    items.setStyleSheet(f"QListWidget {{ background: {_css(COLOURS['list'])}; border: none; }}")
    for i in range(LIST_ITEMS):
        items.addItem(f"Item {i:02d}")
    target = items.item(TARGET_ITEM)
    target.setBackground(QBrush(QColor(*COLOURS["target_item"])))
    items.currentTextChanged.connect(lambda text: save(selected=text))
    layout.addWidget(items)

    combo = QComboBox()
    combo.setView(QListView())  # a plain item view honours per-item background colours
    combo.setMinimumHeight(50)
    combo.setStyleSheet(f"QComboBox {{ background: {_css(COLOURS['combo'])}; border: none; }}")
    combo.addItems(COMBO_ENTRIES)
    combo.setItemData(TARGET_ENTRY, QBrush(QColor(*COLOURS["target_entry"])), Qt.BackgroundRole)
    combo.currentTextChanged.connect(lambda text: save(combo=text))
    layout.addWidget(combo)
    layout.addStretch(1)

    chord = QShortcut(QKeySequence("Ctrl+Shift+K"), window)
    chord.activated.connect(lambda: save(chords=state["chords"] + 1))

    window.setGeometry(x, y, *WINDOW_SIZE)
    window.show()
    window.activateWindow()
    app.processEvents()
    save(ready=True, text=field.text())
    return app.exec()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
