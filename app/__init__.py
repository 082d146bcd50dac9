"""The Deskhand application, the composition root: the desktop app (PySide6), a thin shell over
`agent`, and the Qt-free `deskhand` command line (`commands/`) and bench (`bench/`).

main.py        `deskhand app`: wires everything below; high-DPI aware
window.py      main window: task box, run controls, selectors, live view, thoughts, steps
controller.py  one run at a time: worker, status pill, confirmation dialog, backend cache
worker.py      the QThread that runs `session.RunSession`; talks to widgets only by signals
session.py     Qt-free: pause, confirmation bridge and look/act hooks around `agent.loop`
procbackend.py the model in a child process (its native calls hold the GIL for seconds)
hotkeys.py     Qt-free X11 global hotkeys; the stop hotkey sets the StopFlag directly
tray.py, quick.py, pill.py, confirm.py, history.py, firstrun.py, settings_dialog.py: the rest
settings.py    Qt-free typed settings in the config dir (shared with the CLI)
"""
