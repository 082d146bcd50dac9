"""The first-run dialog's Get button: the jobs behind it, through `models.getting` — the same
code as `deskhand models get NAME` (plan with size and free disk, consent, download, export in
a child with progress events, register, default). No Qt here: the dialog runs these as `Job`s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Report = Callable[[float, float, str], None]


def recommended_name() -> str:
    """The catalogue model the Get button fetches."""
    from models.catalogue import recommended

    return recommended().name


def plan_job(name: str) -> Callable[..., Any]:
    """Ask the Hub what the checkpoint holds; the plan (with sizes) is the job's result."""
    def work(report: Report, _cancelled: Any) -> Any:
        from models.getting import plan_get

        report(0, 0, f"Asking the Hub about {name}…")
        return plan_get(name)

    return work


def install_job() -> Callable[..., Any]:
    """pip-install the export extra (the user agreed); pip's last line is the status."""
    def work(report: Report, _cancelled: Any) -> str:
        from models.getting import install_export_extra

        install_export_extra(lambda line: report(0, 0, line[-160:]))
        return ""

    return work


def get_job(name: str) -> Callable[..., Any]:
    """Download, export, register and make default (the user agreed to the plan)."""
    def work(report: Report, cancelled: Any) -> str:
        from agent.childproc import Progress
        from app.firstrun import Cancelled
        from models.getting import GetCancelled, get_model

        def show(event: Progress) -> None:
            if cancelled.is_set():
                return  # get_model stops at its next check, keeping what arrived
            eta = f", about {event.eta_s / 60:.0f} min left" if event.eta_s else ""
            unit = _sizes(event.done, event.total) if event.stage == "download" else \
                f"{event.done:.0f} of {event.total:.0f}"
            report(event.done, event.total, f"{event.stage}: {unit}{eta}")

        try:
            entry = get_model(name, confirm=lambda _plan: True, on_event=show, cancel=cancelled)
        except GetCancelled as exc:
            raise Cancelled() from exc
        return entry.name if entry is not None else ""

    return work


def _sizes(done: float, total: float) -> str:
    from models.registry import human_size

    return f"{human_size(done)} of {human_size(total)}"
