"""The accessible element at a desktop point: its name and role, from the platform's tree.

Linux: AT-SPI, spoken over D-Bus with jeepney (pure Python, so it installs into the venv; the
pyatspi bindings need the system's PyGObject). Windows: UI Automation's ElementFromPoint through
ctypes COM. macOS: AXUIElementCopyElementAtPosition through ctypes. Only AT-SPI is exercised here
(tests/agent/test_screen_label.py: a GTK and a Qt window under Xvfb on a private D-Bus session); the
Windows and macOS back ends are written to their documented APIs and untested.

Every lookup runs on a worker thread that the caller waits for until its deadline: a hung
application or bus delays nothing past the limit (the worker is left to finish, and no second
lookup starts while it runs).
"""

from __future__ import annotations

import ctypes
import logging
import math
import sys
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from agent.geometry import Monitor, Point, ScreenMapping, Size, Space

log = logging.getLogger(__name__)

_RETRY_AFTER = 5.0  # seconds before a bus that refused (not one that was slow) is tried again
# Roles whose name is the label of what they contain (a click on a button's text hits its label).
_LABELLED_PARENTS = {"push button", "toggle button", "link", "menu item", "check box", "radio button",
                     "page tab", "list item", "button", "hyperlink", "tab item", "menuitem"}


@dataclass(frozen=True)
class Element:
    name: str = ""
    role: str = ""
    source: str = "none"


class Backend(Protocol):
    space: Space  # the coordinate space the platform's lookup expects

    def element_at(self, x: int, y: int, deadline: float) -> Element | None:
        """The element at desktop point (x, y), or None if there is none."""
        ...


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("screen label deadline passed")
    return left


class AtspiBackend:
    """AT-SPI over D-Bus: the desktop's showing windows, then GetAccessibleAtPoint down the tree."""

    space = Space.PHYSICAL  # X11 root-window pixels (AT-SPI's "screen" coordinates)
    _REGISTRY = ("org.a11y.atspi.Registry", "/org/a11y/atspi/accessible/root")
    _NULL = "/org/a11y/atspi/null"
    _ACCESSIBLE, _COMPONENT = "org.a11y.atspi.Accessible", "org.a11y.atspi.Component"
    _STATE_ACTIVE, _STATE_SHOWING = 1, 25

    def __init__(self, bus_address: str | None = None) -> None:
        import jeepney  # noqa: F401  (fail now, with the extra's name, if it is missing)

        self._address = bus_address
        self._conn = None

    def _connect(self, deadline: float):
        from jeepney import DBusAddress, new_method_call
        from jeepney.io.blocking import open_dbus_connection
        from jeepney.wrappers import unwrap_msg

        if self._conn is not None:
            return self._conn
        address = self._address
        if address is None:
            session = open_dbus_connection(bus="SESSION", auth_timeout=_remaining(deadline))
            try:
                bus = DBusAddress("/org/a11y/bus", bus_name="org.a11y.Bus", interface="org.a11y.Bus")
                reply = session.send_and_get_reply(new_method_call(bus, "GetAddress"),
                                                   timeout=_remaining(deadline))
                address = unwrap_msg(reply)[0]
            finally:
                session.close()
        self._conn = open_dbus_connection(bus=address, auth_timeout=_remaining(deadline))
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _call(self, ref: tuple[str, str], interface: str, method: str, deadline: float,
              signature: str | None = None, body: tuple = ()) -> tuple:
        from jeepney import DBusAddress, new_method_call
        from jeepney.wrappers import unwrap_msg

        conn = self._connect(deadline)
        msg = new_method_call(DBusAddress(ref[1], bus_name=ref[0], interface=interface), method,
                              signature, body)
        return unwrap_msg(conn.send_and_get_reply(msg, timeout=_remaining(deadline)))

    def _name(self, ref: tuple[str, str], deadline: float) -> str:
        (variant,) = self._call(ref, "org.freedesktop.DBus.Properties", "Get", deadline, "ss",
                                (self._ACCESSIBLE, "Name"))
        return str(variant[1])

    def _parent(self, ref: tuple[str, str], deadline: float) -> tuple[str, str]:
        (variant,) = self._call(ref, "org.freedesktop.DBus.Properties", "Get", deadline, "ss",
                                (self._ACCESSIBLE, "Parent"))
        return tuple(variant[1])

    def _window_at(self, x: int, y: int, deadline: float) -> tuple[str, str] | None:
        """The showing top-level window containing the point: the active one, else the smallest."""
        found: list[tuple[bool, int, tuple[str, str]]] = []
        (apps,) = self._call(self._REGISTRY, self._ACCESSIBLE, "GetChildren", deadline)
        for app in apps:
            try:
                (windows,) = self._call(tuple(app), self._ACCESSIBLE, "GetChildren", deadline)
            except TimeoutError:
                raise
            except Exception:  # one broken application must not hide the others
                continue
            for window in windows:
                ref = tuple(window)
                try:
                    (states,) = self._call(ref, self._ACCESSIBLE, "GetState", deadline)
                    bits = int(states[0]) | (int(states[1]) << 32 if len(states) > 1 else 0)
                    if not bits >> self._STATE_SHOWING & 1:
                        continue
                    (extents,) = self._call(ref, self._COMPONENT, "GetExtents", deadline, "u", (0,))
                except TimeoutError:
                    raise
                except Exception:
                    continue
                left, top, width, height = extents
                if left <= x < left + width and top <= y < top + height:
                    found.append((bool(bits >> self._STATE_ACTIVE & 1), width * height, ref))
        if not found:
            return None
        found.sort(key=lambda f: (not f[0], f[1]))
        return found[0][2]

    def element_at(self, x: int, y: int, deadline: float) -> Element | None:
        ref = self._window_at(x, y, deadline)
        if ref is None:
            return None
        for _ in range(64):  # deepest element at the point; the bound guards against cycles
            try:
                (child,) = self._call(ref, self._COMPONENT, "GetAccessibleAtPoint", deadline, "iiu",
                                      (x, y, 0))
            except TimeoutError:
                raise
            except Exception:
                break
            child = tuple(child)
            if child[1] == self._NULL or child == ref:
                break
            ref = child
        name = self._name(ref, deadline)
        role = str(self._call(ref, self._ACCESSIBLE, "GetRoleName", deadline)[0])
        if not name.strip():
            # The point is on an unnamed part (a button's inner label or icon): the control's name.
            parent = self._parent(ref, deadline)
            if parent[1] != self._NULL:
                parent_role = str(self._call(parent, self._ACCESSIBLE, "GetRoleName", deadline)[0])
                if parent_role in _LABELLED_PARENTS:
                    name = self._name(parent, deadline)
                    role = role if role in ("password text",) else parent_role
        return Element(name, role, "atspi")


class UiaBackend:
    """Windows UI Automation through ctypes COM (untested here: written to UIAutomationClient.h)."""

    space = Space.PHYSICAL  # ElementFromPoint takes physical pixels in a per-monitor-DPI-aware process
    _CLSID = "{ff48dba4-60ef-4201-aa87-54103eef594e}"
    _IID = "{30cbe57d-d9d0-452a-ab13-7ac5ac4825ee}"
    # vtable slots: IUIAutomation.ElementFromPoint; IUIAutomationElement getters.
    _FROM_POINT, _LOCALIZED_TYPE, _NAME, _IS_PASSWORD, _RELEASE = 7, 22, 23, 35, 2

    def __init__(self) -> None:
        if sys.platform != "win32":
            raise OSError("UI Automation exists on Windows only")
        self._ole32 = ctypes.windll.ole32  # type: ignore[attr-defined]
        self._oleaut32 = ctypes.windll.oleaut32  # type: ignore[attr-defined]
        self._oleaut32.SysFreeString.argtypes = [ctypes.c_void_p]

    def _guid(self, text: str) -> ctypes.Array:
        guid = (ctypes.c_byte * 16)()
        if self._ole32.CLSIDFromString(ctypes.c_wchar_p(text), guid) != 0:
            raise OSError(f"bad GUID {text}")
        return guid

    @staticmethod
    def _method(obj: ctypes.c_void_p, slot: int, *argtypes):
        vtable = ctypes.cast(obj, ctypes.POINTER(ctypes.POINTER(ctypes.c_void_p))).contents
        return ctypes.WINFUNCTYPE(ctypes.c_long, ctypes.c_void_p, *argtypes)(vtable[slot])  # type: ignore[attr-defined]

    def _bstr(self, element: ctypes.c_void_p, slot: int) -> str:
        value = ctypes.c_void_p()
        if self._method(element, slot, ctypes.POINTER(ctypes.c_void_p))(element, ctypes.byref(value)) != 0:
            return ""
        try:
            return ctypes.wstring_at(value.value) if value.value else ""
        finally:
            self._oleaut32.SysFreeString(value)

    def element_at(self, x: int, y: int, deadline: float) -> Element | None:
        class POINT(ctypes.Structure):
            _fields_ = [("x", ctypes.c_long), ("y", ctypes.c_long)]

        self._ole32.CoInitializeEx(None, 0)  # per thread; S_FALSE when already initialised
        automation, element = ctypes.c_void_p(), ctypes.c_void_p()
        if self._ole32.CoCreateInstance(self._guid(self._CLSID), None, 1, self._guid(self._IID),
                                        ctypes.byref(automation)) != 0:
            raise OSError("UI Automation is not available")
        try:
            from_point = self._method(automation, self._FROM_POINT, POINT, ctypes.POINTER(ctypes.c_void_p))
            if from_point(automation, POINT(x, y), ctypes.byref(element)) != 0 or not element.value:
                return None
            try:
                name = self._bstr(element, self._NAME)
                role = self._bstr(element, self._LOCALIZED_TYPE)
                secret = ctypes.c_int()
                is_password = self._method(element, self._IS_PASSWORD, ctypes.POINTER(ctypes.c_int))
                if is_password(element, ctypes.byref(secret)) == 0 and secret.value:
                    role = "password text"
            finally:
                self._method(element, self._RELEASE)(element)
        finally:
            self._method(automation, self._RELEASE)(automation)
        return Element(name, role, "uia")


class AxBackend:
    """macOS Accessibility (AX) through ctypes (untested here: written to the AXUIElement API)."""

    space = Space.LOGICAL  # AX takes global display points, top-left origin
    _UTF8 = 0x08000100

    def __init__(self) -> None:
        if sys.platform != "darwin":
            raise OSError("the AX API exists on macOS only")
        frameworks = "/System/Library/Frameworks/"
        self._ax = ctypes.cdll.LoadLibrary(frameworks + "ApplicationServices.framework/ApplicationServices")
        self._cf = ctypes.cdll.LoadLibrary(frameworks + "CoreFoundation.framework/CoreFoundation")
        vp = ctypes.c_void_p
        self._ax.AXUIElementCreateSystemWide.restype = vp
        self._ax.AXUIElementCopyElementAtPosition.argtypes = [vp, ctypes.c_float, ctypes.c_float,
                                                              ctypes.POINTER(vp)]
        self._ax.AXUIElementCopyAttributeValue.argtypes = [vp, vp, ctypes.POINTER(vp)]
        self._ax.AXUIElementSetMessagingTimeout.argtypes = [vp, ctypes.c_float]
        self._cf.CFStringCreateWithCString.restype = vp
        self._cf.CFStringCreateWithCString.argtypes = [vp, ctypes.c_char_p, ctypes.c_uint32]
        self._cf.CFStringGetCString.argtypes = [vp, ctypes.c_char_p, ctypes.c_long, ctypes.c_uint32]
        self._cf.CFGetTypeID.argtypes = [vp]
        self._cf.CFRelease.argtypes = [vp]
        self._system = self._ax.AXUIElementCreateSystemWide()

    def _attribute(self, element: int, name: str) -> str:
        key = self._cf.CFStringCreateWithCString(None, name.encode(), self._UTF8)
        value = ctypes.c_void_p()
        try:
            status = self._ax.AXUIElementCopyAttributeValue(element, key, ctypes.byref(value))
            if status != 0 or not value.value:
                return ""
            if self._cf.CFGetTypeID(value) != self._cf.CFStringGetTypeID():
                return ""
            buf = ctypes.create_string_buffer(1024)
            return buf.value.decode() if self._cf.CFStringGetCString(value, buf, 1024, self._UTF8) else ""
        finally:
            self._cf.CFRelease(key)
            if value.value:
                self._cf.CFRelease(value)

    def element_at(self, x: int, y: int, deadline: float) -> Element | None:
        self._ax.AXUIElementSetMessagingTimeout(self._system, ctypes.c_float(_remaining(deadline)))
        element = ctypes.c_void_p()
        if self._ax.AXUIElementCopyElementAtPosition(self._system, x, y, ctypes.byref(element)) != 0:
            return None
        try:
            name = (self._attribute(element.value, "AXTitle")
                    or self._attribute(element.value, "AXDescription"))
            role = self._attribute(element.value, "AXRoleDescription")
            if self._attribute(element.value, "AXSubrole") == "AXSecureTextField":
                role = "password text"
        finally:
            self._cf.CFRelease(element)
        return Element(name, role, "ax")


def platform_backend() -> Backend:
    """This platform's accessibility back end; raises OSError/ImportError where there is none."""
    if sys.platform == "win32":
        return UiaBackend()
    if sys.platform == "darwin":
        return AxBackend()
    return AtspiBackend()


class AccessibilityReader:
    """Maps screenshot pixels onto the desktop and asks the back end, within a deadline."""

    def __init__(self, monitor: Monitor | None = None, *, backend: Backend | None = None) -> None:
        self.monitor = monitor
        self._backend = backend if backend is not None else platform_backend()
        self._busy = threading.Lock()  # held by the one lookup allowed to run (even past its deadline)
        self._failed_at = -_RETRY_AFTER

    def desktop_point(self, image_size: tuple[int, int], x: int, y: int) -> tuple[int, int]:
        """Screenshot pixel -> the back end's desktop space, through agent/geometry.py."""
        size = Size(*image_size)
        monitor = self.monitor or Monitor(0, 0, 0, size.width, size.height)
        point = ScreenMapping(monitor, size, size).convert(Point(x + 0.5, y + 0.5, Space.SCREENSHOT),
                                                           self._backend.space)
        return math.floor(point.x), math.floor(point.y)

    def element_at(self, image_size: tuple[int, int], x: int, y: int, deadline: float) -> Element | None:
        """The element at a screenshot pixel; None on no answer, failure or deadline."""
        if time.monotonic() - self._failed_at < _RETRY_AFTER:
            return None
        px, py = self.desktop_point(image_size, x, y)
        if not self._busy.acquire(blocking=False):
            return None  # an earlier lookup is still stuck in the bus; do not queue behind it
        result: list[Element | None] = []

        def lookup() -> None:
            try:
                result.append(self._backend.element_at(px, py, deadline))
            except Exception as exc:
                log.info("screen label: accessibility lookup failed: %s: %s", type(exc).__name__, exc)
                # No bus or no connection: do not try again on every check. A slow answer or a
                # malformed reply from one application is no reason to stop asking the others.
                if isinstance(exc, (OSError, KeyError)) and not isinstance(exc, TimeoutError):
                    self._failed_at = time.monotonic()
                close = getattr(self._backend, "close", None)
                if close is not None:
                    close()  # a half-read reply would desynchronise the next call
            finally:
                self._busy.release()

        worker = threading.Thread(target=lookup, name="screen-label-a11y", daemon=True)
        worker.start()
        worker.join(max(0.0, deadline - time.monotonic()))
        return result[0] if result else None

