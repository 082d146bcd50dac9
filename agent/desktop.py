"""Facts about the desktop the gate needs: the focused window's title.

Best effort everywhere: a title that cannot be read is "", never an exception, because the
gate asks before every action and a vanished window must not stop a run.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

_lock = threading.Lock()
_connections: dict[str, Any] = {}  # display name -> python-xlib Display, reused across calls


def focused_window_title(display: str | None = None) -> str:
    """The title of the window that has the keyboard focus, or "" when unknown."""
    try:
        if sys.platform == "win32":
            return _windows_title()
        if sys.platform == "darwin":
            return _macos_title()
        return _x11_title(display or os.environ.get("DISPLAY", ""))
    except Exception:
        return ""


def _x11_title(display: str) -> str:
    if not display:
        return ""
    with _lock:
        conn = _connections.get(display)
        if conn is not None:
            try:
                return _active_title(conn)
            except Exception:
                # The server went away (or a new one took its name): reconnect once.
                _connections.pop(display, None)
                try:
                    conn.close()
                except Exception:
                    pass
        from Xlib.display import Display

        conn = Display(display)
        title = _active_title(conn)
        _connections[display] = conn
        return title


def _active_title(conn: Any) -> str:
    from Xlib import X

    root = conn.screen().root
    active = root.get_full_property(conn.intern_atom("_NET_ACTIVE_WINDOW"), X.AnyPropertyType)
    window = None
    if active is not None and len(active.value) and active.value[0]:
        window = conn.create_resource_object("window", int(active.value[0]))
    else:
        # No EWMH window manager: fall back to the X input focus.
        focus = conn.get_input_focus().focus
        if not isinstance(focus, int):
            window = focus
    # The focus may be a child of the titled top-level window: walk up to one with a name.
    while window is not None and window.id != root.id:
        title = _window_name(conn, window)
        if title:
            return title
        window = window.query_tree().parent
    return ""


def _window_name(conn: Any, window: Any) -> str:
    utf8 = conn.intern_atom("UTF8_STRING")
    prop = window.get_full_property(conn.intern_atom("_NET_WM_NAME"), utf8)
    if prop is not None and prop.value:
        value = prop.value
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    name = window.get_wm_name()
    if isinstance(name, bytes):
        return name.decode("latin-1")
    return name or ""


def _windows_title() -> str:
    import ctypes

    user32 = ctypes.windll.user32  # type: ignore[attr-defined]
    hwnd = user32.GetForegroundWindow()
    length = user32.GetWindowTextLengthW(hwnd)
    buffer = ctypes.create_unicode_buffer(length + 1)
    user32.GetWindowTextW(hwnd, buffer, length + 1)
    return buffer.value


def _macos_title() -> str:
    # Window titles need the accessibility permission; the frontmost app's name does not.
    try:
        from AppKit import NSWorkspace  # type: ignore[import-not-found]
    except ImportError:
        return ""
    app = NSWorkspace.sharedWorkspace().frontmostApplication()
    return str(app.localizedName()) if app is not None else ""
