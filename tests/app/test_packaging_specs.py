"""The installer sources, checked without building: entry point, requirements, spec, plist, iss.

The bundle itself is built and tested in tests/app/test_packaging_bundle.py (marker `packaging`).
"""

from __future__ import annotations

import plistlib
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "packaging"))

import build_support  # noqa: E402


def fake_project(tmp_path: Path, script: str) -> Path:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    text = re.sub(r'(?m)^deskhand = ".*"$', f'deskhand = "{script}"', text)
    (tmp_path / "pyproject.toml").write_text(text, encoding="utf-8")
    return tmp_path


def test_entry_point_is_read_from_pyproject_never_hard_coded(tmp_path) -> None:
    module, function = build_support.entry_point()
    assert callable(getattr(__import__(module, fromlist=[function]), function))
    moved = fake_project(tmp_path, "app.cli:main")
    assert build_support.entry_point(moved) == ("app.cli", "main")
    source = build_support.launcher_source(moved)
    assert "from app.cli import main as _main" in source and "agent.cli" not in source
    for name in ("deskhand.spec", "pyi_rth_deskhand.py", "linux/make_packages.py"):
        assert "agent.cli" not in (ROOT / "packaging" / name).read_text(encoding="utf-8")


def test_a_malformed_entry_point_is_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="not 'module:function'"):
        build_support.entry_point(fake_project(tmp_path, "app.cli"))


def test_launcher_runs_python_modes_and_the_entry_point(tmp_path) -> None:
    launcher = tmp_path / "deskhand_main.py"
    launcher.write_text(build_support.launcher_source(), encoding="utf-8")
    run = lambda *args: subprocess.run([sys.executable, str(launcher), *args], cwd=ROOT,  # noqa: E731
                                       capture_output=True, text=True, timeout=120,
                                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert run("-S", "-c", "import sys; print('code', sys.argv[1:])", "x").stdout == "code ['x']\n"
    assert run("-m", "json.tool", "--help").returncode == 0
    out = run("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"deskhand {build_support.version()}"


def test_bundle_requirements_hold_no_torch_nor_export_extras() -> None:
    for runtime in ("onnx", "cuda", "directml"):
        wanted = build_support.requirements(["gui", runtime, "package"])
        names = {re.split(r"[<>=!;\[ ]", r, maxsplit=1)[0].lower() for r in wanted}
        assert names.isdisjoint({"torch", "transformers", "onnx", "onnxruntime-genai", "ray", "mcp"})
        assert "pyinstaller" in names and "pyside6-essentials" in names
    with pytest.raises(ValueError, match="no extra"):
        build_support.requirements(["nope"])


def test_version_everywhere_matches_pyproject() -> None:
    from agent import __version__

    assert __version__ == build_support.version()


def exec_spec(platform: str, tmp_path: Path, monkeypatch) -> dict:
    """Run the PyInstaller spec with recording stand-ins for PyInstaller's classes."""
    calls: dict = {}

    def record(kind):
        def make(*args, **kwargs):
            calls.setdefault(kind, []).append((args, kwargs))
            binaries = [("libx.so", "/usr/lib/x86_64-linux-gnu/libx.so", "BINARY"),
                        ("libffi.so.8", "/lib/libffi.so.8", "BINARY"),
                        ("libQt6Core.so.6", "/v/PySide6/libQt6Core.so.6", "BINARY")]
            return types.SimpleNamespace(binaries=binaries, pure=[], scripts=[], datas=[])
        return make

    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.setenv("DESKHAND_BUILD_DIR", str(tmp_path))
    namespace = {name: record(name) for name in ("Analysis", "PYZ", "EXE", "COLLECT", "BUNDLE")}
    namespace["SPECPATH"] = str(ROOT / "packaging")
    spec = ROOT / "packaging" / "deskhand.spec"
    exec(compile(spec.read_text(encoding="utf-8"), str(spec), "exec"), namespace)
    return {"calls": calls, "ns": namespace}


@pytest.mark.parametrize("platform", ["linux", "win32", "darwin"])
def test_spec_collects_every_package_module_and_the_assets(platform, tmp_path, monkeypatch) -> None:
    result = exec_spec(platform, tmp_path, monkeypatch)
    (args, kwargs), = result["calls"]["Analysis"]
    assert Path(args[0][0]).read_text(encoding="utf-8") == build_support.launcher_source()
    hidden = set(kwargs["hiddenimports"])
    assert {"agent.loop", "agent.inference.onnx", "app.main", "app.about", "models.registry"} <= hidden
    assert {"agent", "app", "models"} <= hidden and not any("_offline_boot" in m for m in hidden)
    datas = {(Path(src).relative_to(ROOT).as_posix(), dest) for src, dest in kwargs["datas"]}
    assert ("assets", "assets") in datas
    assert ("agent/_offline_boot/sitecustomize.py", "agent/_offline_boot") in datas
    assert not any(src.startswith("app/nano/stages") for src, _ in datas)  # training only
    assert "torch" in kwargs["excludes"] and "transformers" in kwargs["excludes"]
    assert kwargs["runtime_hooks"] == [str(ROOT / "packaging" / "pyi_rth_deskhand.py")]
    exes = [kw["name"] for _a, kw in result["calls"]["EXE"]]
    assert exes == (["deskhand", "deskhandw"] if platform == "win32" else ["deskhand"])
    kept = [Path(b[1]).name for b in result["ns"]["a"].binaries]
    # Linux leaves the desktop's own libraries to the host, never the Python runtime's.
    assert kept == (["libffi.so.8", "libQt6Core.so.6"] if platform == "linux"
                    else ["libx.so", "libffi.so.8", "libQt6Core.so.6"])
    if platform == "darwin":
        (_args, bundle), = result["calls"]["BUNDLE"]
        assert bundle["info_plist"]["CFBundleVersion"] == build_support.version()
        assert bundle["name"] == "Deskhand.app"


def test_macos_plist_declares_screen_recording_and_accessibility() -> None:
    with open(ROOT / "packaging" / "macos" / "Info.plist", "rb") as f:
        info = plistlib.load(f)
    for key in ("NSScreenCaptureUsageDescription", "NSAccessibilityUsageDescription"):
        assert len(info[key]) > 40 and "Deskhand" in info[key]
    assert info["CFBundleIdentifier"] == "org.deskhand.Deskhand" and info["NSHighResolutionCapable"] is True


def test_windows_installer_script_installs_the_bundle_folder() -> None:
    iss = (ROOT / "packaging" / "windows" / "deskhand.iss").read_text(encoding="utf-8")
    sections = re.findall(r"(?m)^\[(\w+)\]$", iss)
    assert sections == ["Setup", "Tasks", "Files", "Icons", "Registry", "Run", "Code"]
    assert 'Source: "{#SourceDir}\\*"' in iss and "recursesubdirs" in iss
    assert "deskhandw.exe" in iss and "PrivilegesRequired=lowest" in iss
    # The names the installer refers to are the ones the spec and the build script make.
    assert "build\\package\\deskhand-windows\\icons\\deskhand.ico" in iss
    build = (ROOT / "scripts" / "build-package.sh").read_text(encoding="utf-8")
    assert 'work="build/package/$name-$target"' in build and "gui directml package" in build


def test_shell_scripts_parse() -> None:
    for script in ("scripts/build-package.sh", "packaging/macos/make-dmg.sh",
                   "packaging/windows/build-installer.sh", "packaging/linux/appimage-runtime/build.sh"):
        assert subprocess.run(["bash", "-n", str(ROOT / script)]).returncode == 0, script


def test_build_script_refuses_an_unknown_target() -> None:
    out = subprocess.run(["bash", str(ROOT / "scripts" / "build-package.sh"), "solaris"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "usage:" in out.stderr
