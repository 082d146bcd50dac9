"""The seams of the split modules: executor dispatch vs input back end, the offline guard vs its
record, the site server vs its site API, the label finder vs the OCR engine (issue 11)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("pyautogui", "Xlib", "mouseinfo", "pyperclip")


def loaded_after(imports: str) -> set[str]:
    """The top-level and `agent.*` modules a fresh interpreter holds after `imports`."""
    code = f"import sys, json\n{imports}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=60).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def test_the_input_back_end_knows_nothing_about_actions() -> None:
    modules = loaded_after("import agent.inputs.backend, agent.inputs.typers")
    assert not {"agent.actions", "agent.executor", "agent.loop"} & modules
    assert not {m for m in modules if m.split(".")[0] in HEAVY}  # opened only on first input


def test_the_dispatch_imports_no_input_library() -> None:
    modules = loaded_after("import agent.executor")
    assert "agent.inputs.backend" in modules  # the seam it dispatches onto
    assert not {m for m in modules if m.split(".")[0] in HEAVY}


def test_the_executor_still_exports_what_callers_use() -> None:
    from agent import executor
    from agent.inputs import backend, typers

    assert executor.XTestTyper is typers.XTestTyper and executor.ClipboardTyper is typers.ClipboardTyper
    assert executor._open_backend is backend.open_backend  # the name tests replace
    assert executor.INPUT_IS_LOGICAL is backend.INPUT_IS_LOGICAL


def test_the_site_server_decides_loopback_through_the_offline_module(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.eval import server

    monkeypatch.setattr(server, "is_loopback_host", lambda host: False)
    with pytest.raises(ValueError, match="non-loopback"):
        server.SiteServer(host="127.0.0.1")


def test_the_site_server_agrees_with_is_loopback_host() -> None:
    from agent.eval.server import SiteServer
    from agent.offline import is_loopback_host

    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost", "::ffff:127.0.0.1", "0.0.0.0",
                 "10.0.0.1", "::"):
        try:
            SiteServer(host=host)  # not started: only the decision is made
            refused = ""
        except ValueError as exc:
            refused = str(exc)
        assert ("non-loopback" in refused) is not is_loopback_host(host), (host, refused)
    # A loopback literal that is not in the form clients write in Host would be answered 421
    # on every request: refused up front, naming the form to use.
    with pytest.raises(ValueError, match="::ffff:7f00:1"):
        SiteServer(host="::ffff:127.0.0.1")


def test_the_offline_record_is_one_list_read_through_agent_offline() -> None:
    from agent import offline, offline_log

    assert offline.OfflineGuard.log is offline_log.LOG
    assert offline.OfflineGuard._child_logs is offline_log.CHILD_LOGS
    before = len(offline_log.LOG)
    offline.OfflineGuard.record("connect", "192.0.2.1:80", "test")
    try:
        assert offline_log.LOG[-1].destination == "192.0.2.1:80"
        assert offline.attempts_since(offline_log.LOG[-1].when)[-1] == offline_log.LOG[-1]
    finally:
        del offline_log.LOG[before:]


@pytest.mark.parametrize("path", ["agent/executor.py", "agent/inputs/backend.py",
                                  "agent/inputs/typers.py", "agent/offline.py",
                                  "agent/offline_log.py", "agent/offline_resolve.py",
                                  "agent/eval/server.py", "agent/eval/site_api.py",
                                  "agent/screen_label_ocr.py", "agent/tesseract.py"])
def test_split_modules_stay_small(path: str) -> None:
    assert len((ROOT / path).read_text(encoding="utf-8").splitlines()) <= 400
