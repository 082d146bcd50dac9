"""`deskhand mcp`: serve Deskhand to MCP hosts over stdio or loopback HTTP.

Composition root of the MCP server: it builds the backend the way `deskhand run` does (same
options, same factory: `app.commands.backends`), the screen, the executor and the headless confirmation,
and hands tasks to the desktop app instead when it is running.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

DESCRIPTION = """\
Serve Deskhand as a local MCP (Model Context Protocol) server, so another agent (Claude Desktop,
VS Code, Cursor, any MCP host) can delegate whole desktop tasks to it. The local model does the
task; only text goes back to the client: status, answer and a summary of the steps, never a
screenshot (unless you pass --share-screenshots). Risky actions are confirmed by you on this
computer, never by the client; with nobody to ask the answer is no. When the Deskhand app is
running, tasks run in it (you see them in the window or the status pill and can stop them);
otherwise they run here, headless. One task at a time: a second run_task is answered "busy".
"""

EPILOG = """\
stdio (what MCP hosts start):   deskhand mcp
loopback HTTP with a token:     deskhand mcp --http [--port 8767]
set-up snippets for hosts:      deskhand mcp --print-config
"""


def register(sub: Any) -> None:
    """Add the `mcp` subcommand to the `deskhand` parser."""
    from agent.mcp.http import DEFAULT_PORT
    from agent.options import DEFAULTS, add_flags

    p = sub.add_parser("mcp", help="serve Deskhand to other agents as a local MCP server",
                       description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--http", action="store_true",
                   help="serve streamable HTTP on 127.0.0.1 instead of stdio; clients must send "
                   "the bearer token kept in the user config dir (see --print-config)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"HTTP port on 127.0.0.1 (default {DEFAULT_PORT})")
    p.add_argument("--print-config", action="store_true",
                   help="print set-up snippets for MCP hosts (stdio command, HTTP URL and token) "
                   "and exit")
    p.add_argument("--model", metavar="NAME|DIR", help="model for headless runs (as for `run`)")
    add_flags(p, "provider")
    p.add_argument("--server", metavar="URL", help="a loopback OpenAI-compatible model server "
                   "for headless runs instead of an in-process model")
    p.add_argument("--server-model", metavar="NAME", help="model name to ask the server for")
    p.add_argument("--script", metavar="FILE", type=Path,
                   help="replay model replies from a JSON list of strings (demos, tests)")
    add_flags(p, "max_steps", "settle_timeout", "search_url", "deny_titles", "confirm_timeout",
              "keep_screenshots", "second_look", max_steps={
                  "help": f"default and upper bound of a task's steps ({DEFAULTS.max_steps})"})
    p.add_argument("--no-app", action="store_true",
                   help="always run headless here, even when the Deskhand app is running")
    p.add_argument("--share-screenshots", action="store_true",
                   help="ALLOW SENDING SCREENSHOTS TO THE MCP CLIENT: get_run may then return "
                   "images of your screen (off by default; pixels otherwise never leave)")


def run(args: argparse.Namespace) -> int:
    """Entry point of `deskhand mcp`."""
    from agent.errors import UserError

    if args.print_config:
        print(config_text())
        return 0
    try:
        import mcp  # noqa: F401
    except ImportError as exc:
        raise UserError(f"the MCP server needs the mcp SDK: pip install 'deskhand[mcp]' ({exc})") from exc
    import anyio

    from agent.mcp.server import DeskhandMCP

    app = DeskhandMCP(build_desk(args), transport="http" if args.http else "stdio",
                      share_screenshots=args.share_screenshots)
    if args.share_screenshots:
        from agent.mcp.handoff import SharingNotice
        from agent.mcp.server import SHARE_WARNING

        print(f"deskhand mcp: {SHARE_WARNING}", file=sys.stderr)
        SharingNotice().start()  # the running app shows the warning while this server lives
    if not args.http:
        app.server.run("stdio")
        return 0
    from agent.mcp.http import HOST, PATH, TokenError, load_token, serve, token_path

    try:
        token = load_token()
    except TokenError as exc:
        raise UserError(str(exc)) from exc
    print(f"deskhand mcp: serving http://{HOST}:{args.port}{PATH} (bearer token in "
          f"{token_path()})", file=sys.stderr)
    try:
        anyio.run(lambda: serve(app.server, token, args.port))
    except OSError as exc:
        raise UserError(str(exc)) from exc
    except KeyboardInterrupt:
        pass
    return 0


def build_desk(args: argparse.Namespace) -> Any:
    """The desk: the app when it runs (unless --no-app), else a headless one built from `args`."""
    from agent.mcp.desk import LocalDesk
    from agent.mcp.handoff import AutoDesk
    from agent.mcp.localask import LocalAsk
    from agent.options import from_args
    from agent.safety import StopFlag
    from app.commands.backends import model_spec, open_backend

    def backend() -> Any:  # built when the first task comes, as `deskhand run` builds it
        return open_backend(model_spec(model=args.model, script=args.script, server=args.server,
                                       server_model=args.server_model), provider=args.provider)

    from app.services import default_screen, default_window_title

    def executor(stop: StopFlag) -> Any:
        from agent.executor import Executor

        return Executor(stop=stop, search_url=options.search_url)  # `--search-url` too

    import importlib.util

    # The app's own question dialog when the GUI part is installed, else zenity/kdialog.
    dialog = ([sys.executable, "-m", "app.askdialog"]
              if importlib.util.find_spec("PySide6") and importlib.util.find_spec("app") else None)
    options = from_args(args)
    local = LocalDesk(backend=backend, screen=default_screen, executor=executor,
                      ask=LocalAsk(options.confirm_timeout, dialog), options=options,
                      window_title=default_window_title)
    return local if args.no_app else AutoDesk(local)


def config_text() -> str:
    """Set-up snippets for common MCP hosts, with this installation's command and token."""
    from agent.mcp.http import DEFAULT_PORT, HOST, PATH, TokenError, load_token, token_path

    command = str(Path(sys.argv[0]).resolve()) if Path(sys.argv[0]).name == "deskhand" else "deskhand"
    try:
        token = load_token()
    except TokenError as exc:
        token = f"<{exc}>"
    stdio = {"mcpServers": {"deskhand": {"command": command, "args": ["mcp"]}}}
    vscode = {"servers": {"deskhand": {"type": "stdio", "command": command, "args": ["mcp"]}}}
    http = {"mcpServers": {"deskhand": {"type": "http", "url": f"http://{HOST}:{DEFAULT_PORT}{PATH}",
                                        "headers": {"Authorization": f"Bearer {token}"}}}}
    return "\n".join([
        "# Claude Desktop (claude_desktop_config.json), Cursor (~/.cursor/mcp.json): stdio",
        json.dumps(stdio, indent=2),
        "# VS Code (.vscode/mcp.json): stdio",
        json.dumps(vscode, indent=2),
        f"# Streamable HTTP (`deskhand mcp --http`); the token is kept in {token_path()}",
        json.dumps(http, indent=2)])
