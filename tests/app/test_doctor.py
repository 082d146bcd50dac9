"""`deskhand doctor`: each check's ok / warn / fail line and its fix, the JSON shape, exit code."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from agent import doctor
from agent.doctor import Check, Level
from app import doctor as app_doctor
from app.commands import main as deskhand
from models.importing import import_model
from models.registry import Registry
from tests.models.test_registry import make_genai_folder

NO_X = {"XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "wayland-0"}


def by_name(found: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in found}


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="needs Xvfb")
def test_under_xvfb_display_capture_and_input_are_ok(xvfb_display: str, monkeypatch) -> None:
    for key in NO_X:
        monkeypatch.delenv(key, raising=False)
    found = by_name(app_doctor.run_all())
    assert found["display"].level is Level.OK and xvfb_display in found["display"].detail
    assert found["capture"].level is Level.OK, found["capture"]
    assert "real pixels" in found["capture"].detail
    assert found["input"].level is Level.OK and "XTEST" in found["input"].detail


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="needs Xvfb")
def test_a_capture_that_does_not_show_the_screen_fails(xvfb_display: str, monkeypatch) -> None:
    from agent.screen import Screen, Screenshot

    def black(self, index=1):  # what XWayland hands an X11 client under a Wayland compositor
        return Screenshot(Image.new("RGB", (640, 480)), self.monitor(index))

    monkeypatch.setattr(Screen, "capture", black)
    check = doctor.screen_capture()
    assert check.level is Level.FAIL and "all black" in check.detail
    assert "X11 session" in check.fix


def test_wayland_without_xwayland_fails_with_the_explanation(monkeypatch, capsys) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    for key, value in NO_X.items():
        monkeypatch.setenv(key, value)
    check = doctor.display_server()
    assert check.level is Level.FAIL
    assert "Wayland" in check.detail and "neither see nor drive any window" in check.detail
    assert "X11 session" in check.fix and "GNOME on Xorg" in check.fix
    assert deskhand(["doctor", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    names = [c["name"] for c in report["checks"]]
    assert names[0] == "display" and report["checks"][0]["level"] == "fail"
    assert "capture" not in names and "input" not in names  # nothing to capture from


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="needs Xvfb")
def test_wayland_with_xwayland_warns_which_apps_can_be_driven(xvfb_display: str) -> None:
    check = doctor.display_server({**NO_X, "DISPLAY": xvfb_display})
    assert check.level is Level.WARN
    assert "only X11 apps" in check.detail and "native Wayland windows" in check.detail
    assert "GDK_BACKEND=x11" in check.fix


def test_no_display_at_all_fails() -> None:
    check = doctor.display_server({})
    assert check.level is Level.FAIL and "DISPLAY" in check.fix


def test_broken_default_model_folder_is_a_fail_line_with_the_fix(tmp_path: Path) -> None:
    folder = make_genai_folder(tmp_path / "fara")
    import_model(folder, name="fara")
    Registry().set_default("fara")
    name, found, check = app_doctor.default_model()
    assert (name, found, check.level) == ("fara", folder.resolve(), Level.OK)
    (folder / "genai_config.json").write_text("{oops")
    name, _, check = app_doctor.default_model()
    assert check.level is Level.FAIL and "genai_config.json" in check.detail
    assert "deskhand models remove fara" in check.fix
    shutil.rmtree(folder)
    _, _, check = app_doctor.default_model()
    assert check.level is Level.FAIL and "does not exist" in check.detail


def test_no_model_yet_fails_and_disk_is_checked_for_getting_one(monkeypatch) -> None:
    name, folder, check = app_doctor.default_model()
    assert (name, folder, check.level) == ("", None, Level.FAIL)
    assert "deskhand models default NAME" in check.fix
    checks = by_name(app_doctor._resources(None, ""))
    assert "24.0 GiB" in checks["disk"].detail and "Fara-7B" in checks["disk"].detail


def test_memory_and_disk_against_the_needs(tmp_path: Path, monkeypatch) -> None:
    gib = 1 << 30
    monkeypatch.setattr(doctor, "available_ram", lambda: 4 * gib)
    low = by_name(doctor.memory_and_disk(8 * gib, 1 << 60, tmp_path, "the model"))
    assert low["memory"].level is Level.FAIL and "4.0 GiB available" in low["memory"].detail
    assert low["disk"].level is Level.FAIL and "DESKHAND_DATA_DIR" in low["disk"].fix
    ok = by_name(doctor.memory_and_disk(2 * gib, 1, tmp_path / "not-yet" / "made", "the model"))
    assert ok["memory"].level is Level.OK and ok["disk"].level is Level.OK
    assert str(tmp_path) in ok["disk"].detail  # measured where the folder will be made


@pytest.mark.parametrize(("flags", "level", "shown"), [
    ("fpu sse2 avx avx2 fma", Level.OK, "AVX2"),
    ("avx2 avx512f avx512_vnni amx_tile amx_int8", Level.OK, "AMX, AVX-512 VNNI, AVX-512, AVX2"),
    ("fpu sse2 sse4_2 avx", Level.WARN, "without AVX2"),
])
def test_cpu_features_from_cpuinfo(tmp_path: Path, monkeypatch, flags, level, shown) -> None:
    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n")
    check = doctor.cpu_features(cpuinfo)
    assert check.level is level and shown in check.detail


def test_offline_self_test_is_a_real_refused_connection(monkeypatch) -> None:
    assert doctor.offline_guard().level is Level.OK
    monkeypatch.setattr("agent.offline_boot.child_environment", lambda **_kw: {})
    check = doctor.offline_guard()  # a child without the guard: the self-test must notice
    assert check.level is Level.FAIL and "did not start" in check.detail


def test_providers_and_chromium(monkeypatch) -> None:
    pytest.importorskip("onnxruntime")
    check = doctor.providers()
    assert check.level is Level.OK and "CPU" in check.detail
    monkeypatch.setenv("DESKHAND_CHROMIUM", "/nonexistent/chromium")
    check = doctor.chromium()
    assert check.level is Level.WARN and "DESKHAND_CHROMIUM" in check.fix


def test_json_shape_and_exit_code(monkeypatch, capsys) -> None:
    lines = [Check("display", Level.OK, "X11 display :1"),
             Check("model", Level.WARN, "w", "do this")]
    monkeypatch.setattr(app_doctor, "checks", lambda: iter(lines))
    assert deskhand(["doctor", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == {"ok": True, "checks": [
        {"name": "display", "level": "ok", "detail": "X11 display :1", "fix": ""},
        {"name": "model", "level": "warn", "detail": "w", "fix": "do this"}]}
    lines.append(Check("offline", Level.FAIL, "f", "fix it"))
    assert deskhand(["doctor"]) == 1
    captured = capsys.readouterr()
    assert "[fail] offline" in captured.out and "fix: fix it" in captured.out
    assert "1 check(s) failed" in captured.err


def test_json_stays_one_document_when_a_library_prints(monkeypatch, capsys) -> None:
    # python-xlib prints "Xlib.xauth: warning, no xauthority details available" on stdout when
    # there is no ~/.Xauthority (found running the built bundle): `--json` must still parse.
    def noisy():
        print("Xlib.xauth: warning, no xauthority details available")
        yield Check("display", Level.OK, "X11 display :1")

    monkeypatch.setattr(app_doctor, "checks", noisy)
    assert deskhand(["doctor", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["checks"][0]["name"] == "display"
    assert "xauthority" in captured.err


def test_help_describes_every_check(capsys) -> None:
    with pytest.raises(SystemExit):
        deskhand(["doctor", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for word in ("Wayland", "XTest", "AVX2", "AMX", "CUDA", "offline guard", "Chromium", "--json"):
        assert word in text


def test_doctor_never_imports_qt() -> None:
    import subprocess
    import sys

    code = ("import sys, app.commands.doctor, app.doctor, agent.doctor; "
            "sys.exit('PySide6' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], env={**os.environ}).returncode == 0
