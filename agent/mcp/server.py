"""The MCP tools and resources (official `mcp` SDK, v2 `MCPServer`).

Pixels stay: no tool returns an image unless the person started the server with
`--share-screenshots`. Confirmations stay with the person: the client only sees "waiting for the
person's confirmation" in progress and status. Every call is recorded: in the record of the run
it concerns while one is active, and in `mcp-calls.jsonl` in the data dir.
"""

from __future__ import annotations

import base64
import io
import json
import queue
import threading
import time
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, ImageContent, TextContent
from pydantic import Field

from agent import __version__
from agent.jsonl import dumps_line
from agent.mcp.desk import Busy, Desk, Progress, TaskRequest, outcome_text
from agent.options import DEFAULTS
from agent.paths import data_dir
from agent.safety import StopFlag
from agent.trajectory import TrajectoryError, TrajectoryStore

INSTRUCTIONS = """\
Deskhand does tasks on this computer's desktop with a local vision model: it looks at the screen
and clicks and types until the task is done. Delegate a whole task in plain words with run_task;
you get back the status, the model's answer and a text summary of the steps, never the screen.
One task runs at a time: a second run_task while one runs is refused with "busy". Risky actions
(paying, sending, deleting, ...) are confirmed by the person at this computer, not by you; while
they decide, progress and status say "waiting for the person's confirmation".
"""
POLL_S = 0.02  # how often the request task looks at the worker (bounds cancel and progress delay)
SHARE_WARNING = ("SCREENSHOTS ARE SHARED: this server was started with --share-screenshots, so "
                 "get_run can return images of the screen to the MCP client.")


class DeskhandMCP:
    """Builds the `MCPServer` for one `Desk`; `transport` names how clients reach it."""

    def __init__(self, desk: Desk, *, store: TrajectoryStore | None = None,
                 transport: str = "stdio", share_screenshots: bool = False,
                 call_log: Path | None = None) -> None:
        self.desk, self.transport = desk, transport
        self.store = store or TrajectoryStore()
        self.share_screenshots = share_screenshots
        self.call_log = call_log if call_log is not None else data_dir() / "mcp-calls.jsonl"
        self._log_lock = threading.Lock()
        self.server = self._build()

    # --- who is calling ----------------------------------------------------------------------
    def caller(self, ctx: Context | None, tool: str) -> dict[str, Any]:
        """Which client made this call, how and when; written to the run record and the call log."""
        info: dict[str, Any] = {"tool": tool, "transport": self.transport, "at": time.time()}
        if ctx is None:
            return info
        try:
            params = ctx.session.client_params
        except Exception:
            params = None
        if params is not None:
            info["client"] = f"{params.client_info.name} {params.client_info.version}".strip()
        request = getattr(ctx.request_context, "request", None)
        peer = getattr(request, "client", None)
        if peer is not None:
            info["peer"] = f"{peer.host}:{peer.port}"
        return info

    def record_call(self, call: dict[str, Any]) -> None:
        self.desk.note_call(call)
        try:
            self.call_log.parent.mkdir(parents=True, exist_ok=True)
            with self._log_lock, open(self.call_log, "a", encoding="utf-8") as f:
                f.write(dumps_line(call))
        except OSError:
            pass  # the run record has it; a read-only data dir must not fail the call

    # --- tools -------------------------------------------------------------------------------
    def _build(self) -> MCPServer:
        server = MCPServer("deskhand", version=__version__, instructions=INSTRUCTIONS)
        # Text tools are unstructured: the same text twice (content and structuredContent) would
        # double what a calling model reads.
        server.add_tool(self.run_task, name="run_task", title="Do a task on the desktop",
                        description=RUN_TASK_DOC, structured_output=False)
        server.add_tool(self.get_run, name="get_run", title="Read a run's record",
                        description=GET_RUN_DOC, structured_output=False)
        server.add_tool(self.list_runs, name="list_runs", title="List recent runs",
                        description="The most recent runs, newest first: id, time, status, "
                        "number of steps and task, one per line.", structured_output=False)
        server.add_tool(self.stop_run, name="stop_run", title="Stop the current run",
                        structured_output=False,
                        description="Stop the task that is running now (like the person's "
                        "global stop key: input ends within a fraction of a second). Says "
                        "whether a run was stopped.")
        server.add_tool(self.status, name="status", title="Deskhand's state",
                        description="idle / running / waiting for the person's confirmation, "
                        "the current run (id, task, step), whether the model is loaded, and the "
                        "expected seconds per step measured on this machine.")
        server.resource("deskhand://runs", name="runs", mime_type="text/plain",
                        description="Recent runs, one per line (text).")(self._runs_resource)
        server.resource("deskhand://runs/{run_id}", name="run", mime_type="text/plain",
                        description="One run step by step: thoughts, actions, timings "
                        "(text, no images).")(self._run_resource)
        return server

    async def run_task(
        self,
        task: Annotated[str, Field(min_length=1, max_length=4000,
                                   description="What to do on the desktop, in plain words, "
                                   "e.g. 'open the Downloads folder and sort it by date'.")],
        ctx: Context,
        monitor: Annotated[int, Field(ge=0, le=16, description="Monitor to watch and act on: "
                                      "1..n, or 0 for all together.")] = 1,
        max_steps: Annotated[int | None, Field(ge=1, le=1000, description="Stop after this "
                                               "many steps (default and upper bound: the "
                                               "server's --max-steps).")] = None,
        confirm: Annotated[Literal["risky", "always"], Field(
            description="When the person is asked before an action: 'risky' (paying, "
            "sending, deleting, ...) or 'always'. A client cannot turn confirmations off.")] = "risky",
        answers: Annotated[list[str] | None, Field(max_length=20, description="Answers to "
                           "questions the agent may ask while working, in order. A question "
                           "beyond them ends the run and is quoted in the reason.")] = None,
    ) -> str | CallToolResult:
        call = self.caller(ctx, "run_task")
        self.record_call(call)
        limit = getattr(self.desk, "max_steps", DEFAULTS.max_steps)
        request = TaskRequest(task.strip(), monitor, min(max_steps or limit, limit), confirm, call,
                              tuple(answers or ()))
        stop = StopFlag()
        progress: queue.Queue[Progress] = queue.Queue()
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                box["outcome"] = self.desk.run(request, progress.put, stop)
            except BaseException as exc:  # handed to the request task, which reports it
                box["error"] = exc

        thread = threading.Thread(target=work, name="deskhand-mcp-run", daemon=True)
        thread.start()
        sent = 0
        try:
            while thread.is_alive() or not progress.empty():
                while not progress.empty():
                    p = progress.get_nowait()
                    sent += 1
                    await ctx.report_progress(sent, None, f"step {p.step} · {p.phase}: {p.text}")
                await anyio.sleep(POLL_S)
        except anyio.get_cancelled_exc_class():
            # The client cancelled the request: the global stop, then let the run end cleanly.
            stop.set("stopped by the MCP client (request cancelled)")
            self.record_call(dict(call, tool="cancel", at=time.time()))
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(thread.join, 30)
            raise
        if "error" in box:
            if isinstance(box["error"], Busy):  # the message itself, for the calling model
                return CallToolResult(content=[TextContent(type="text", text=str(box["error"]))],
                                      is_error=True)
            raise box["error"]
        return outcome_text(box["outcome"])

    async def get_run(
        self,
        ctx: Context,
        run_id: Annotated[str, Field(description="A run id from run_task or list_runs, a unique "
                                     "prefix of one, or 'last'.")] = "last",
        include_screenshots: Annotated[bool, Field(
            description="Only honoured when the person started Deskhand with "
            "--share-screenshots; otherwise no image ever leaves this computer.")] = False,
    ) -> list[TextContent | ImageContent]:
        self.record_call(dict(self.caller(ctx, "get_run"), run_id=run_id))
        text = self._run_text(run_id)
        content: list[TextContent | ImageContent] = [TextContent(type="text", text=text)]
        if include_screenshots and self.share_screenshots:
            content[0] = TextContent(type="text", text=f"{SHARE_WARNING}\n\n{text}")
            content += self._screenshots(run_id)
        elif include_screenshots:
            content.append(TextContent(type="text", text="(screenshots were not included: the "
                                       "person has not allowed sharing them; pixels stay on "
                                       "this computer)"))
        return content

    async def list_runs(
        self, ctx: Context,
        limit: Annotated[int, Field(ge=1, le=200, description="How many runs.")] = 10,
    ) -> str:
        self.record_call(dict(self.caller(ctx, "list_runs"), limit=limit))
        return self._runs_text(limit)

    async def stop_run(self, ctx: Context) -> str:
        self.record_call(self.caller(ctx, "stop_run"))
        if self.desk.stop("stopped by an MCP client (stop_run)"):
            return "stopping: the run ends at the next phase boundary (input stops at once)"
        return "no run is in progress"

    async def status(self, ctx: Context) -> dict[str, Any]:
        self.record_call(self.caller(ctx, "status"))
        state = await anyio.to_thread.run_sync(self.desk.status)
        if state.get("state") == "waiting":
            state["waiting_for"] = "the person's confirmation"
        state["screenshots_shared"] = self.share_screenshots
        return state

    # --- text records ------------------------------------------------------------------------
    def _runs_text(self, limit: int) -> str:
        try:
            runs = self.store.list_runs()[:limit]
        except TrajectoryError as exc:
            raise ToolError(str(exc)) from exc
        if not runs:
            return "no runs yet"
        return "\n".join(f"{r.id}  {time.strftime('%Y-%m-%d %H:%M', time.localtime(r.started))}  "
                         f"{r.status}  {r.steps} steps  {r.task[:100]}" for r in runs)

    def _run_text(self, run_id: str) -> str:
        try:
            record = self.store.load(run_id)
        except KeyError as exc:
            raise ToolError(exc.args[0] if exc.args else f"no run {run_id!r}") from exc
        except TrajectoryError as exc:
            raise ToolError(str(exc)) from exc
        meta, info = record.meta, record.info
        lines = [f"run {info.id}: {info.task}", f"status: {info.status} — {meta.get('reason') or ''}",
                 f"started: {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(info.started))}"]
        if info.answer:
            lines.append(f"answer: {info.answer}")
        for s in record.steps:
            lines.append(f"[{s.index + 1}] {s.description or ''}")
            if s.thoughts:
                lines.append(f"    thoughts: {s.thoughts}")
            if s.error:
                lines.append(f"    error: {s.error}")
            shown = " ".join(f"{k} {v:.2f}s" for k, v in s.timings.items()
                             if not k.startswith("model."))
            if shown:
                lines.append(f"    timings: {shown}")
        calls = ((meta.get("settings") or {}).get("mcp") or {}) if isinstance(meta.get("settings"),
                                                                             dict) else {}
        if calls:
            lines.append("requested by: " + json.dumps({k: v for k, v in calls.items()
                                                        if k != "calls"}))
        return "\n".join(lines)

    def _screenshots(self, run_id: str) -> list[ImageContent]:
        """Step screenshots as PNG images, only ever called with sharing turned on."""
        from PIL import Image

        path = self.store.resolve(run_id)
        images = []
        for png in sorted(path.glob("step-*.png"))[:20]:
            with Image.open(png) as img:
                img.thumbnail((1280, 800))
                buf = io.BytesIO()
                img.save(buf, format="PNG")
            images.append(ImageContent(type="image", data=base64.b64encode(buf.getvalue()).decode(),
                                       mime_type="image/png"))
        return images

    def _runs_resource(self) -> str:
        return self._runs_text(50)

    def _run_resource(self, run_id: str) -> str:
        return self._run_text(run_id)


RUN_TASK_DOC = """\
Do a task on this computer's desktop and wait for it to finish. A local vision model looks at
the screen and clicks and types; you get back text only: status (success, failure, stopped,
denied, max_steps, timeout, stalled, model_error, error), the model's answer, the run id
(for get_run) and one line per step (the action and the model's thoughts). Progress
notifications arrive per step. Cancelling the request stops the run at once. Risky actions
are confirmed by the person at the computer (progress says "waiting for the person's
confirmation"); a refusal ends the run with status "denied". Only one task runs at a time:
while one runs this tool fails with a message starting "busy:" and nothing is queued.
"""

GET_RUN_DOC = """\
A run's record as text: task, status, answer, and per step the action, the model's thoughts,
errors and the time spent in each phase. Never images, unless the person at this computer turned
on sharing screenshots.
"""
