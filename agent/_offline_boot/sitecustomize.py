"""Start-up hook for child processes of a Deskhand run: see agent/offline_boot.py.

Runs the real sitecustomize (a distribution's or the user's) afterwards, so putting this folder
first on PYTHONPATH changes nothing else.
"""

import importlib.machinery
import importlib.util
import os
import sys


def _main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        from agent.offline_boot import bootstrap
    except ImportError:
        root = os.environ.get("DESKHAND_OFFLINE_ROOT", "")
        if not root:
            raise
        sys.path.append(root)
        from agent.offline_boot import bootstrap
    bootstrap()
    rest = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is not None and spec.loader is not None:
        module = importlib.util.module_from_spec(spec)
        sys.modules["sitecustomize"] = module
        spec.loader.exec_module(module)


try:
    _main()
except BaseException as _exc:  # fail closed, as bootstrap() does
    if os.environ.get("DESKHAND_OFFLINE"):
        sys.stderr.write(f"deskhand: offline mode could not be set up in this process: {_exc!r}\n")
        os._exit(70)
    raise
