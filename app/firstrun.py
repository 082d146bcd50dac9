"""Setting up a model: get the recommended one (download its official checkpoint and export it
here, `app.model_get`), import a folder, export from a checkpoint, or download (with consent).

Each job runs off the GUI thread with progress and Cancel; its outcome is a registered model name.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.doctor_page import DoctorPanel
from app.icons import icon
from app.plaintext import plain
from app.qtcompat import emit
from app.to_gui import ToGui, to_gui

EXPORT_TARGET = "models.cli:main"  # `deskhand models ARGS`, run in a child by agent/childproc


def catalogue_html() -> str:
    """The models Deskhand knows, both families, with sizes and reported scores (as HTML)."""
    from html import escape

    from models.catalogue import CATALOGUE, SCORES_SOURCE, recommended

    best = recommended()
    rows = []
    for e in CATALOGUE:
        status = ("<b>recommended</b>" if e is best else "ready") if e.ready else (
            "<i>export in progress: Deskhand cannot run it yet, so it is not the default</i>")
        rows.append(f"<li><b>{escape(e.name)}</b> ({escape(e.parameters)}, {escape(e.size_text())}"
                    f" on disk): {escape(e.scores_text())}. {status}</li>")
    return ("<p>Models Deskhand knows:</p><ul>" + "".join(rows) + "</ul>"
            f"<p><small>Scores as reported in {escape(SCORES_SOURCE)}, not measured by Deskhand. "
            "Fara1.5 sizes are estimates until its export works.</small></p>")


class Cancelled(Exception):
    """The user pressed Cancel."""


def human_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


class Job:
    """Runs `fn(progress, cancelled)` on a thread; `progress(done, total, text)` may be called often.

    Not a QObject on purpose: its thread holds it, and every outcome reaches the dialog through
    `to_gui` (app/to_gui.py), so closing the dialog mid-job frees nothing the thread uses."""

    def __init__(self, fn: Callable[..., Any], *, progress: ToGui, done: ToGui,
                 failed: ToGui) -> None:
        self._fn = fn
        self._progress, self._done, self._failed = progress, done, failed
        self.cancel_event = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._run, name="model-setup", daemon=True).start()

    def cancel(self) -> None:
        self.cancel_event.set()

    def _report(self, done: int, total: int, text: str = "") -> None:
        if self.cancel_event.is_set():
            raise Cancelled()
        self._progress(float(done), float(total), text)

    def _run(self) -> None:
        try:
            result = self._fn(self._report, self.cancel_event)
        except Cancelled:
            self._failed("cancelled")
        except Exception as exc:  # every failure here is shown to the user, and the app goes on
            self._failed(str(exc) or type(exc).__name__)
        else:
            self._done(result)


def _import(folder: str) -> Callable[..., Any]:
    def work(report, _cancelled) -> str:
        from models.importing import import_model
        from models.registry import Registry, name_from

        report(0, 0, "checking the folder…")
        registry = Registry()
        name = name_from(folder.rstrip("/\\").split("/")[-1])
        base, n = name, 2
        while name in registry:
            name, n = f"{base}-{n}", n + 1
        return import_model(folder, name=name, registry=registry).name

    return work


def _export(folder: str, name: str) -> Callable[..., Any]:
    """The export in a child process (an export cannot be interrupted from inside, a process
    can); its stage progress arrives as typed events, never as scraped text."""
    def work(report, cancelled) -> str:
        from agent.childproc import ChildCancelled, ChildError, Progress, run_child
        from models.registry import Registry

        def show(event: Progress) -> None:
            eta = f" (about {event.eta_s / 60:.0f} min left)" if event.eta_s else ""
            report(event.done, event.total,
                   f"{event.stage}: {event.done:.0f} of {event.total:.0f}{eta}")

        try:
            run_child(EXPORT_TARGET, ["export", folder, "--name", name], on_event=show,
                      cancel=cancelled)
        except ChildCancelled as exc:
            raise Cancelled() from exc
        except ChildError as exc:
            raise RuntimeError(f"The export did not finish (exit code {exc.exit_code}). "
                               f"{exc.last_line()[:200]}") from exc
        finally:
            registry = Registry()
            if name not in registry:  # cancelled or failed: remove the half-written folder
                shutil.rmtree(registry.owned_folder(name), ignore_errors=True)
        return name

    return work


class ModelSetupDialog(QDialog):
    """Explains what is needed and offers Import folder / Export from a checkpoint / Download."""

    model_ready = Signal(str)  # the registered model's name

    def __init__(self, parent: QWidget | None = None, *, reason: str = "",
                 choose_folder: Callable[[str], str] | None = None,
                 ask: Callable[[str, str], bool] | None = None,
                 get_name: str | None = None) -> None:
        super().__init__(parent)
        from app.model_get import recommended_name

        self.get_name = get_name or recommended_name()
        self.setWindowTitle(self.tr("Set up a model"))
        self.setWindowIcon(icon("deskhand"))
        self._choose_folder = choose_folder or self._folder_dialog
        self._ask = ask or self._question
        self.job: Job | None = None
        self.model_name: str | None = None
        intro = QLabel(self.tr(
            "<h3>Deskhand needs a vision model on this computer</h3>"
            "<p>The agent runs a Fara-7B class model (an int4 ONNX build, about 5 GB on disk, "
            "8 GB of free memory recommended) entirely on this machine: no screenshot leaves it.</p>"
            "<p>Choose one way to get it:</p><ul>"
            "<li><b>Get</b> (recommended): download the official checkpoint (about 16.6 GB; "
            "the size and free disk are shown first), export it on this machine and make it "
            "the default. Stopped? Press it again: it continues where it stopped.</li>"
            "<li><b>Import folder</b>: a model folder you already have (genai_config.json, "
            "ONNX files, tokenizer).</li>"
            "<li><b>Export from a checkpoint</b>: convert a Hugging Face Fara-7B / Qwen2.5-VL "
            "checkpoint (about 5 minutes and 9 GB of memory for Fara-7B on a 2-core "
            "machine).</li>"
            "<li><b>Download</b>: fetch an onnxruntime-genai build from a Hub repository you "
            "name; the size is shown before anything is downloaded.</li></ul>"))
        intro.setWordWrap(True)
        self.catalogue = QLabel(catalogue_html())
        self.catalogue.setWordWrap(True)
        self.reason = plain(QLabel(reason))  # quotes model, tokenizer and server errors
        self.reason.setWordWrap(True)
        self.reason.setStyleSheet("color: #D64545;")
        self.reason.setVisible(bool(reason))
        self.get_button = QPushButton(icon("export"), self.tr("Get {0}").format(self.get_name))
        self.import_button = QPushButton(icon("model"), self.tr("Import folder…"))
        self.export_button = QPushButton(icon("export"), self.tr("Export from a checkpoint…"))
        self.download_button = QPushButton(icon("export"), self.tr("Download…"))
        self.repo = QLineEdit()
        self.repo.setPlaceholderText(self.tr("owner/name of an onnxruntime-genai build"))
        self.repo.setToolTip(self.tr("The Hugging Face repository to download from"))
        row = QHBoxLayout()
        for b in self._buttons():
            row.addWidget(b)
        self.bar = QProgressBar()
        self.bar.setVisible(False)
        self.status = plain(QLabel())  # quotes download and export output
        self.status.setWordWrap(True)
        self.cancel_button = QPushButton(self.tr("Cancel"))
        self.cancel_button.setVisible(False)
        self.close_button = QPushButton(self.tr("Close"))
        self.close_button.clicked.connect(self.reject)
        bottom = QHBoxLayout()
        bottom.addWidget(self.bar, 1)
        bottom.addWidget(self.cancel_button)
        bottom.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.catalogue)
        self.checks = DoctorPanel(self)  # `deskhand doctor`'s checks, before the first task
        layout.addWidget(self.checks)
        layout.addWidget(self.reason)
        layout.addLayout(row)
        repo_row = QHBoxLayout()
        repo_row.addWidget(QLabel(self.tr("Download from")))
        repo_row.addWidget(self.repo, 1)
        layout.addLayout(repo_row)
        layout.addWidget(self.status)
        layout.addLayout(bottom)
        self.get_button.clicked.connect(self.get_model)
        self.import_button.clicked.connect(self.import_folder)
        self.export_button.clicked.connect(self.export_checkpoint)
        self.download_button.clicked.connect(self.download)
        self.cancel_button.clicked.connect(self.cancel)
        self.resize(620, 420)

    # --- helpers -----------------------------------------------------------------------------
    def _folder_dialog(self, title: str) -> str:
        return QFileDialog.getExistingDirectory(self, title)

    def _question(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(self, title, text, QMessageBox.StandardButton.Yes
                                      | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def _buttons(self) -> tuple[QPushButton, ...]:
        return (self.get_button, self.import_button, self.export_button, self.download_button)

    def _busy(self, busy: bool, text: str = "") -> None:
        for b in self._buttons():
            b.setEnabled(not busy)
        self.bar.setVisible(busy)
        self.cancel_button.setVisible(busy)
        if busy:
            self.bar.setRange(0, 0)
        self.status.setText(text)

    def _run_job(self, fn: Callable[..., Any], text: str, on_done: Callable[[Any], None]) -> Job:
        # One job runs at a time (the buttons are off while busy), so one pending callback is
        # enough; the job reaches this dialog only through `to_gui` (see Job).
        self._on_job_done = on_done
        job = Job(fn, progress=to_gui(self._on_progress), done=to_gui(self._job_done),
                  failed=to_gui(self._on_failed))
        self.job = job
        self._busy(True, text)
        job.start()
        return job

    def _job_done(self, result: Any) -> None:
        self._on_job_done(result)

    def _on_progress(self, done: float, total: float, text: str) -> None:
        if total > 0:
            self.bar.setRange(0, 1000)
            self.bar.setValue(int(1000 * done / total))
            self.status.setText(text or self.tr("{0} of {1}").format(human_size(done),
                                                                       human_size(total)))
        elif text:
            self.status.setText(text)

    def _on_failed(self, message: str) -> None:
        self.job = None
        self._busy(False)
        self.status.setText(self.tr("Cancelled.") if message == "cancelled"
                            else self.tr("That did not work: {0}").format(message))

    def _on_ready(self, name: object) -> None:
        self.job = None
        self._busy(False, self.tr("Model {0} is ready.").format(name))
        if isinstance(name, str) and name:
            self.model_name = name
            emit(self.model_ready, name)
            self.accept()

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.status.setText(self.tr("Cancelling…"))

    # --- the four ways -----------------------------------------------------------------------
    def get_model(self) -> None:
        """The Get button: `deskhand models get NAME` through the same code (models.getting)."""
        from app import model_get
        from models.getting import export_extra_missing, install_command

        missing = export_extra_missing()
        if missing:
            if not self._ask(self.tr("Install the export tools?"), self.tr(
                    "Exporting the checkpoint needs torch, transformers and onnxruntime-genai "
                    "(missing: {0}; about 1 GB with the CPU build of torch). Install them now "
                    "with:\n\n{1}").format(", ".join(missing), " ".join(install_command()))):
                self.status.setText(self.tr("Nothing was installed or downloaded."))
                return
            self._run_job(model_get.install_job(), self.tr("Installing the export tools…"),
                          lambda _r: self._plan_get())
            return
        self._plan_get()

    def _plan_get(self) -> None:
        from app import model_get

        self._run_job(model_get.plan_job(self.get_name),
                      self.tr("Looking up {0}…").format(self.get_name), self._got_plan)

    def _got_plan(self, plan: Any) -> None:
        from app import model_get

        self.job = None
        self._busy(False)
        if not self._ask(self.tr("Get {0}?").format(plan.entry.name), plan.describe()):
            self.status.setText(self.tr("Nothing was downloaded."))
            return
        self._run_job(model_get.get_job(self.get_name),
                      self.tr("Getting {0}…").format(plan.entry.name), self._on_ready)

    def import_folder(self) -> None:
        folder = self._choose_folder(self.tr("Choose a model folder"))
        if folder:
            self._run_job(_import(folder), self.tr("Checking {0}…").format(folder), self._on_ready)

    def download(self) -> None:
        repo = self.repo.text().strip()
        if not repo:
            return

        asking = self.tr("Asking {0} what it holds…").format(repo)  # the worker holds no widget

        def plan(report, _cancelled):
            from models.download import plan_download

            report(0, 0, asking)
            return plan_download(repo)

        self._run_job(plan, self.tr("Looking up {0}…").format(repo), self._planned)

    def _planned(self, plan: Any) -> None:
        self.job = None
        self._busy(False)
        size = human_size(plan.total_bytes - plan.already)
        if not self._ask(self.tr("Download the model?"),
                         self.tr("Download {0} from {1}?\n\n{2}").format(size, plan.repo_id,
                                                                        plan.describe())):
            self.status.setText(self.tr("Nothing was downloaded."))
            return

        def fetch(report, cancelled):
            from models import download

            try:
                entry = download.download_model(
                    plan.repo_id, revision=plan.commit, subfolder=plan.subfolder or None,
                    name=plan.name, confirm=lambda _p: True, progress=False,
                    on_progress=lambda d, t: report(d, t, ""), cancel=cancelled)
            except getattr(download, "DownloadCancelled", Cancelled) as exc:
                raise Cancelled() from exc  # partial files stay; a later download resumes
            return entry.name if entry is not None else ""

        self._run_job(fetch, self.tr("Downloading {0}…").format(size), self._on_ready)

    def export_checkpoint(self) -> None:
        folder = self._choose_folder(self.tr("Choose a Hugging Face checkpoint folder"))
        if not folder:
            return
        from models.registry import Registry, name_from

        name = name_from(folder.rstrip("/\\").split("/")[-1] + "-int4")
        registry = Registry()
        if name in registry:
            self.status.setText(self.tr("A model named {0} is already registered.").format(name))
            return
        self._run_job(_export(folder, name),
                      self.tr("Exporting {0} (this can take a long time)…").format(folder),
                      self._on_ready)
