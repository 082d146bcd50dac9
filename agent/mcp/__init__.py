"""Deskhand as a local MCP server: another agent delegates a desktop task, only text goes back.

`desk` runs tasks (headless here, or handed to the running app through `handoff`), `server`
exposes them as MCP tools and resources, `http` adds the loopback-only, token-checked HTTP
transport; the `deskhand mcp` command that wires them up is `app.commands.mcp`. The `mcp` SDK
is imported only by `server`, `http` and that command (the `mcp` extra).
"""
