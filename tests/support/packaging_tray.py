"""A minimal XEmbed system tray for tests: lets a real app show its tray icon on Xvfb.

Xvfb has no panel, so Qt reports no system tray and never shows the icon. This host owns the
`_NET_SYSTEM_TRAY_S0` selection (the freedesktop system-tray protocol), announces itself with
the MANAGER message, and reparents every icon window that asks to dock into its own window at a
known place, with a background colour no icon uses, so a screenshot shows whether an icon is
there. Run it in a thread: `with tray_host(display) as host: ... host.docked`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from Xlib import X, Xatom, display
from Xlib.protocol import event

BACKGROUND = (255, 0, 255)  # magenta: no Deskhand icon has it
ICON = 32
REQUEST_DOCK = 0


@dataclass
class TrayHost:
    """Where the tray sits on screen, and the icon windows docked so far."""

    x: int
    y: int
    size: int = ICON
    docked: list[int] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)


def _serve(name: str, host: TrayHost, ready: threading.Event) -> None:
    d = display.Display(name)
    screen = d.screen()
    tray = screen.root.create_window(host.x, host.y, host.size * 4, host.size, 0, screen.root_depth,
                                     background_pixel=(BACKGROUND[0] << 16) | BACKGROUND[2],
                                     override_redirect=True,
                                     event_mask=X.SubstructureNotifyMask | X.StructureNotifyMask)
    tray.map()
    selection = d.intern_atom(f"_NET_SYSTEM_TRAY_S{d.get_default_screen()}")
    opcode = d.intern_atom("_NET_SYSTEM_TRAY_OPCODE")
    tray.change_property(d.intern_atom("_NET_SYSTEM_TRAY_ORIENTATION"), Xatom.CARDINAL, 32, [0])
    tray.set_selection_owner(selection, X.CurrentTime)
    announce = event.ClientMessage(window=screen.root, client_type=d.intern_atom("MANAGER"),
                                   data=(32, [X.CurrentTime, selection, tray.id, 0, 0]))
    screen.root.send_event(announce, event_mask=X.StructureNotifyMask)
    d.flush()
    ready.set()
    while not host.stop.is_set():
        if not d.pending_events():
            host.stop.wait(0.02)
            continue
        ev = d.next_event()
        if ev.type == X.ClientMessage and ev.client_type == opcode and ev.data[1][1] == REQUEST_DOCK:
            icon = d.create_resource_object("window", ev.data[1][2])
            icon.reparent(tray, len(host.docked) * host.size, 0)
            icon.configure(width=host.size, height=host.size)
            icon.map()
            d.flush()
            host.docked.append(icon.id)
    tray.destroy()
    d.close()


@contextmanager
def tray_host(name: str, x: int = 1300, y: int = 0) -> Iterator[TrayHost]:
    """A system tray on display `name` at (x, y) for the duration."""
    host = TrayHost(x, y)
    ready = threading.Event()
    thread = threading.Thread(target=_serve, args=(name, host, ready), daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the test tray did not start")
    try:
        yield host
    finally:
        host.stop.set()
        thread.join(5)
