"""Deskhand as a local MCP server: another agent delegates a desktop task, only text goes back.

`desk` runs tasks (headless here, or handed to the running app through `handoff`), `server`
exposes them as MCP tools and resources, `http` adds the loopback-only, token-checked HTTP
transport, and `cli` is the `deskhand mcp` command. The `mcp` SDK is imported only by
`server`, `http` and `cli` (the `mcp` extra).
"""
