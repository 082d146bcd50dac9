"""The About dialog: Deskhand's version, the runtime versions and providers, and where data lives.

The facts are gathered without Qt widgets (`about_facts`), so a bug report can quote the same
lines the dialog shows ("Copy" puts them on the clipboard).
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from agent import __version__
from agent.paths import config_dir, data_dir, models_dir
from app.icons import icon
from app.plaintext import plain
from app.settings import Settings, settings_path


def _onnxruntime() -> tuple[str, str]:
    """ONNX Runtime's version and its execution providers ("not installed" without the extra)."""
    try:
        import onnxruntime
    except ImportError:
        return "not installed (pip extra: onnx, cuda or directml)", "none"
    return onnxruntime.__version__, ", ".join(onnxruntime.get_available_providers())


def _install() -> str:
    """How this Deskhand runs: the installed bundle (and where) or a Python environment."""
    if getattr(sys, "frozen", False):
        return f"bundle in {Path(sys.executable).parent}"
    return f"Python environment {sys.prefix}"


def about_facts(settings: Settings) -> list[tuple[str, str]]:
    """(label, value) lines: versions first, then the folders Deskhand reads and writes."""
    import PySide6
    from PySide6.QtCore import qVersion

    ort_version, providers = _onnxruntime()
    return [
        ("Deskhand", __version__),
        ("Installed as", _install()),
        ("Python", f"{platform.python_version()} ({platform.python_implementation()})"),
        ("Qt", f"{qVersion()} (PySide6 {PySide6.__version__})"),
        ("ONNX Runtime", ort_version),
        ("Execution providers", providers),
        ("Operating system", platform.platform()),
        ("Settings", str(settings_path())),
        ("Config folder", str(config_dir())),
        ("Data folder", str(data_dir(settings.data_dir))),
        ("Models", str(models_dir())),
        ("Runs", str(settings.runs_dir())),
    ]


def facts_text(facts: list[tuple[str, str]]) -> str:
    """The facts as plain text lines, for the clipboard."""
    return "\n".join(f"{label}: {value}" for label, value in facts)


class AboutDialog(QDialog):
    """Read-only facts in a form; every value can be selected, Copy takes them all."""

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("About Deskhand"))
        self.setWindowIcon(icon("deskhand"))
        self.facts = about_facts(settings)
        title = QLabel(self.tr("Deskhand {0}").format(__version__))
        title.setStyleSheet("font-size: 16pt; font-weight: bold;")
        blurb = QLabel(self.tr("An on-device computer-use agent. No pixel leaves this computer."))
        form = QFormLayout()
        self.values: dict[str, QLabel] = {}
        for label, value in self.facts:
            shown = plain(QLabel(value))  # paths can hold anything, never render them as markup
            shown.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            shown.setWordWrap(True)
            self.values[label] = shown
            form.addRow(self.tr(label), shown)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        copy = QPushButton(self.tr("Copy"))
        copy.clicked.connect(self.copy)
        buttons.addButton(copy, QDialogButtonBox.ButtonRole.ActionRole)
        layout = QVBoxLayout(self)
        for widget in (title, blurb):
            layout.addWidget(widget)
        layout.addLayout(form)
        layout.addWidget(buttons)

    def copy(self) -> None:
        """Put the facts on the clipboard (for a bug report)."""
        QGuiApplication.clipboard().setText(facts_text(self.facts))


def show_about(settings: Settings, parent: QWidget | None = None) -> None:
    """Open the About dialog (modal)."""
    AboutDialog(settings, parent).exec()
