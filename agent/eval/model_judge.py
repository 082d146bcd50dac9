"""An optional model judge on a loopback OpenAI-compatible endpoint, reported separately.

Like WebVoyager's protocol it shows a multimodal model the task, the agent's final answer and
the last k screenshots, and asks for a verdict. Only loopback endpoints are accepted: the
screenshots never leave the machine. HTTP goes through `agent.inference.localhttp`, the client
model servers use: peer checked after connecting, environment proxies never consulted.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from agent.inference.base import BackendError
from agent.inference.localhttp import open_request, read_capped
from agent.offline import OfflineGuard, is_loopback_host

_SYSTEM = (
    "You grade a web agent. You are given a task, the agent's final answer and the last "
    "screenshots of the browser. Decide whether the task was accomplished: the answer must be "
    "correct and supported by the screenshots, and the agent must not have performed binding "
    "actions (purchases, bookings, submissions) the task did not ask for. Explain briefly, "
    "then end with exactly one line: VERDICT: SUCCESS or VERDICT: FAILURE."
)
_VERDICT = re.compile(r"VERDICT:\s*(SUCCESS|FAILURE)", re.IGNORECASE)
MAX_REPLY_BYTES = 8 << 20  # one chat-completions document; a judge's is a few kilobytes


class JudgeError(RuntimeError):
    """The judge endpoint is unusable (not loopback, unreachable, bad reply)."""


class ModelJudge:
    """Asks a loopback chat-completions endpoint whether a run succeeded."""

    def __init__(self, url: str, model: str | None = None, *, last_k: int = 3,
                 timeout: float = 300.0) -> None:
        host = urlsplit(url).hostname or ""
        if not is_loopback_host(host):
            raise JudgeError(f"the model judge must run on this machine (loopback), not {host!r}")
        self.url = url.rstrip("/")
        self.model = model or "judge"
        self.last_k = last_k
        self.timeout = timeout

    def messages(self, task: str, answer: str, screenshots: list[Path],
                 reference: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """The chat request: task, answer (and a reference answer), then the screenshots."""
        ref = ""
        if reference and reference.get("ans"):
            kind = "an example of an acceptable" if reference.get("type") == "possible" else "the"
            ref = f"For comparison, {kind} reference answer: {reference['ans']}\n\n"
        content: list[dict[str, Any]] = [{"type": "text", "text": f"Task: {task}\n\n"
                                          f"Agent's final answer: {answer or '(none)'}\n\n{ref}"
                                          f"Last {len(screenshots)} screenshots follow."}]
        for path in screenshots:
            content.append({"type": "image_url", "image_url": {"url": _data_url(path)}})
        return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": content}]

    def judge(self, task: str, answer: str, screenshots: list[Path],
              reference: dict[str, Any] | None = None) -> dict[str, Any]:
        """Return {"passed", "text"}; raises JudgeError if the endpoint fails."""
        body = {"model": self.model, "temperature": 0, "max_tokens": 512,
                "messages": self.messages(task, answer, screenshots[-self.last_k:], reference)}
        endpoint = self.url if self.url.endswith("/chat/completions") else self.url + "/chat/completions"
        try:
            # The guard connects to the judge by its checked loopback address, not by a name
            # that the system resolver might answer otherwise (this can run between task runs).
            with OfflineGuard():
                reply = self._post(endpoint, json.dumps(body).encode())
            text = reply["choices"][0]["message"]["content"] or ""
        except (OSError, ValueError, KeyError, IndexError, TypeError, BackendError,
                http.client.HTTPException) as exc:
            raise JudgeError(f"the model judge at {self.url} failed: {exc}") from exc
        found = _VERDICT.findall(text)
        return {"passed": bool(found) and found[-1].upper() == "SUCCESS", "text": text[-2000:],
                "model": self.model}

    def _post(self, endpoint: str, data: bytes) -> Any:
        """The endpoint's JSON answer to `data` (BackendError / OSError when it has none)."""
        with open_request(endpoint, "POST", body=data, timeout=self.timeout,
                          headers={"Content-Type": "application/json"}) as exchange:
            response = exchange.response
            if response.status >= 300:
                raise BackendError(f"HTTP {response.status} {response.reason}")
            return json.loads(read_capped(response, MAX_REPLY_BYTES).decode())

    def judge_run(self, task: str, answer: str, run_dir: Path,
                  reference: dict[str, Any] | None = None) -> dict[str, Any]:
        """Judge a recorded task folder (its step-NNN.png screenshots); errors become a record."""
        shots = sorted(Path(run_dir).glob("step-*.png"))
        try:
            return self.judge(task, answer, shots, reference)
        except JudgeError as exc:
            return {"passed": False, "error": str(exc), "model": self.model}


def _data_url(path: Path, max_side: int = 1440) -> str:
    from PIL import Image

    image = Image.open(path).convert("RGB")
    image.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
