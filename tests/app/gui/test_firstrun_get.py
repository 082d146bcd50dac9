"""The first-run dialog's Get button goes through `models.getting.get_model`, the code behind
`deskhand models get`: against the loopback fake hub it downloads the tiny checkpoint, exports
it, registers it and makes it the default."""

from __future__ import annotations

from models import getting
from models.registry import Registry


def test_get_button_downloads_exports_and_sets_the_default(qtbot, get_hub,
                                                           monkeypatch) -> None:
    from app.firstrun import ModelSetupDialog

    calls: list[str] = []
    real = getting.get_model
    monkeypatch.setattr(getting, "get_model", lambda name, **kw: calls.append(name) or real(
        name, **kw))
    questions: list[str] = []
    dialog = ModelSetupDialog(ask=lambda title, text: questions.append(text) or True,
                              get_name="tiny-vl")
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.get_button.text() == "Get tiny-vl" and dialog.repo.text() == ""
    with qtbot.waitSignal(dialog.model_ready, timeout=240_000) as ready:
        dialog.get_button.click()
    assert ready.args == ["tiny-vl"] and calls == ["tiny-vl"]
    assert "1. download the checkpoint" in questions[0] and "free" in questions[0]
    assert Registry().default == "tiny-vl" and get_hub.gets


def test_the_get_button_fetches_the_recommended_catalogue_model(qtbot) -> None:
    from app.firstrun import ModelSetupDialog

    dialog = ModelSetupDialog()
    qtbot.addWidget(dialog)
    assert dialog.get_button.text() == "Get Fara-7B"
