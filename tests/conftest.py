"""Shared fixtures: a temporary data dir for every test, a private Xvfb display, and the tiny
checkpoint with its exports (session fixtures: each is built at most once per test run)."""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.xvfb import display_env, xvfb  # noqa: E402

_QT_FIXTURES = {"qtbot", "qapp"}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # A Qt test's widgets must be freed on the GUI thread: with automatic cycle collection on,
    # any thread that allocates (a download, an export, a doctor check) may free a closed
    # dialog caught in a cycle while the GUI thread uses Qt, a crash seconds later. The app
    # does the same (app/to_gui.collect_on_gui_thread); here the collection runs at teardown.
    if _QT_FIXTURES & set(getattr(item, "fixturenames", ())):
        gc.disable()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item):
    yield  # every fixture (qtbot's widgets included) is finalized here
    if not gc.isenabled():
        gc.collect()
        gc.enable()


@pytest.fixture(autouse=True)
def _private_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every test out of the real user's data and config dirs."""
    base = tmp_path_factory.mktemp("deskhand-home")
    monkeypatch.setenv("DESKHAND_DATA_DIR", str(base / "data"))
    monkeypatch.setenv("DESKHAND_CONFIG_DIR", str(base / "config"))
    monkeypatch.setenv("DESKHAND_CACHE_DIR", str(base / "cache"))
    # No built-in model (models/builtin.py) unless a test asks for it: most need "no model yet".
    monkeypatch.setenv("DESKHAND_BUILTIN_MODEL", "")


@pytest.fixture(scope="session")
def xvfb_display() -> Iterator[str]:
    """A 1440x900 Xvfb display for the whole session; DISPLAY points at it."""
    with xvfb(1440, 900) as display, display_env(display):
        yield display


@pytest.fixture
def xvfb_factory():
    """Start further displays of other sizes inside one test: `with xvfb_factory(w, h) as d:`."""
    return xvfb


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen2.5-VL checkpoint (seed 0)."""
    from app.bench.checkpoints import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "hf")


@pytest.fixture(scope="session")
def export_fp32(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny checkpoint exported with an fp32 decoder."""
    from models.export import export_model

    return export_model(tiny_checkpoint, tmp_path_factory.mktemp("fp32") / "onnx",
                        precision="fp32", progress=False)


@pytest.fixture(scope="session")
def export_int4(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny checkpoint exported with an int4 decoder and int8 vision weights."""
    from models.export import export_model

    return export_model(tiny_checkpoint, tmp_path_factory.mktemp("int4") / "onnx",
                        precision="int4", vision_quant="int8", progress=False)


@pytest.fixture(scope="session")
def reference_backend(tiny_checkpoint: Path):
    """The transformers backend over the tiny checkpoint (fp32)."""
    from agent.inference.reference import ReferenceBackend

    return ReferenceBackend(tiny_checkpoint)


@pytest.fixture(scope="session")
def onnx_fp32_backend(export_fp32: Path):
    """The onnxruntime-genai backend over the fp32 export, on CPU."""
    from agent.inference.onnx import OnnxBackend

    return OnnxBackend(export_fp32, provider="cpu")


def pytest_report_header(config: pytest.Config) -> str:
    return f"DISPLAY={os.environ.get('DISPLAY', '')!r}"


@pytest.fixture
def get_hub(tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The fake hub serving the tiny checkpoint, with a catalogue entry naming it (`models get`)."""
    import json

    from models.catalogue import EXTRA_ENV
    from tests.support.fake_hub import TINY_CATALOGUE_ENTRY, serve

    files = {p.relative_to(tiny_checkpoint).as_posix(): p.read_bytes()
             for p in tiny_checkpoint.rglob("*") if p.is_file()}
    extra = tmp_path / "catalogue.json"
    extra.write_text(json.dumps([TINY_CATALOGUE_ENTRY]))
    monkeypatch.setenv(EXTRA_ENV, str(extra))
    with serve(files, monkeypatch) as server:
        yield server

