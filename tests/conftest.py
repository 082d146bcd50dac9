"""Shared fixtures: a temporary data dir for every test, and a private Xvfb display."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.xvfb import display_env, xvfb  # noqa: E402


@pytest.fixture(autouse=True)
def _private_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every test out of the real user's data and config dirs."""
    base = tmp_path_factory.mktemp("deskhand-home")
    monkeypatch.setenv("DESKHAND_DATA_DIR", str(base / "data"))
    monkeypatch.setenv("DESKHAND_CONFIG_DIR", str(base / "config"))
    monkeypatch.setenv("DESKHAND_CACHE_DIR", str(base / "cache"))


@pytest.fixture(scope="session")
def xvfb_display() -> Iterator[str]:
    """A 1440x900 Xvfb display for the whole session; DISPLAY points at it."""
    with xvfb(1440, 900) as display, display_env(display):
        yield display


@pytest.fixture
def xvfb_factory():
    """Start further displays of other sizes inside one test: `with xvfb_factory(w, h) as d:`."""
    return xvfb


def pytest_report_header(config: pytest.Config) -> str:
    return f"DISPLAY={os.environ.get('DISPLAY', '')!r}"
