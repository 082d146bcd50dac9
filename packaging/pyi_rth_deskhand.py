"""PyInstaller runtime hook: offline mode for the bundle's child processes.

From source, a guarded run's Python children guard themselves through the sitecustomize that
agent/offline_boot.py puts first on PYTHONPATH. A frozen binary never reads PYTHONPATH's
sitecustomize, so this hook (run in every start of the binary, before its main script and before
multiprocessing unpickles anything) calls the same bootstrap, and fails closed the same way.
"""

import os
import sys

if os.environ.get("DESKHAND_OFFLINE"):
    try:
        from agent.offline_boot import bootstrap

        bootstrap()
    except BaseException as _exc:
        sys.stderr.write(f"deskhand: offline mode could not be set up in this process: {_exc!r}\n")
        os._exit(70)
