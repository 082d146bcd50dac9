"""`deskhand mcp`'s headless desk is built from the command line like `deskhand run`."""

from __future__ import annotations

from agent.safety import StopFlag
from app.commands import build_parser
from app.commands.mcp import build_desk


def test_search_url_reaches_the_headless_executor() -> None:
    # The flag was parsed into the run options but the MCP desk built its executor without it,
    # so web_search over MCP said "no search page" whatever the person configured.
    url = "http://127.0.0.1:8080/search?q={query}"
    args = build_parser().parse_args(["mcp", "--no-app", "--search-url", url])
    executor = build_desk(args)._executor(StopFlag())
    assert executor.search_url == url


def test_no_second_look_reaches_the_headless_runs() -> None:
    """`deskhand mcp --no-second-look` asks the model once per click, as `deskhand run` does."""
    from agent.loop import RunConfig

    for argv, expected in ((["mcp", "--no-app"], True), (["mcp", "--no-app", "--no-second-look"], False)):
        desk = build_desk(build_parser().parse_args(argv))
        assert desk.options.second_look is expected
        assert RunConfig.from_options(desk.options).second_look is expected
