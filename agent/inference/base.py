"""The `Backend` protocol every inference implementation follows, and a scripted test double.

Messages use the chat format of Qwen2.5-VL processors: a list of
`{"role": "system" | "user" | "assistant", "content": [{"type": "text", "text": ...} | {"type": "image"}]}`
and `images` holds one PIL image (already at model size) per `{"type": "image"}` item, in order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from PIL import Image

if TYPE_CHECKING:
    from agent.replay.backend import ReplayCheck

Message = dict[str, Any]
TokenCallback = Callable[[str], None]


class Cancel(Protocol):
    """Anything with `is_set()`; `threading.Event` and `agent.safety.StopFlag` qualify."""

    def is_set(self) -> bool: ...


class BackendError(RuntimeError):
    """A backend cannot run (unusable model folder, provider, server); the message is for users."""


@dataclass(frozen=True)
class Generation:
    """One model answer with its cost."""

    text: str
    prompt_tokens: int = 0
    generated_tokens: int = 0
    # Seconds per phase, e.g. {"vision": .., "prefill": .., "decode": ..}; backends fill what they know.
    timings: dict[str, float] = field(default_factory=dict)
    # Why generation ended: "stop" (end of call / EOS), "length", or "cancelled".
    finish_reason: str = "stop"
    # Prompt tokens whose keys and values came from the previous call, and screenshots whose
    # features were cached, instead of being computed again (backends that cache fill these).
    cached_tokens: int = 0
    cached_images: int = 0
    # Set only by `agent.replay.ReplayBackend`: how a recorded step was checked on the screen.
    replay: ReplayCheck | None = None

    @property
    def tokens_per_second(self) -> float:
        decode = self.timings.get("decode", 0.0)
        return self.generated_tokens / decode if decode > 0 else 0.0


@runtime_checkable
class Backend(Protocol):
    """What the agent loop needs from a model."""

    name: str

    def generate(
        self,
        messages: Sequence[Message],
        images: Sequence[Image.Image],
        *,
        max_new_tokens: int = 512,
        on_token: TokenCallback | None = None,
        cancel: Cancel | None = None,
    ) -> Generation: ...


def count_images(messages: Sequence[Message]) -> int:
    """How many image placeholders the messages hold."""
    return sum(
        1
        for m in messages
        for part in (m.get("content") if isinstance(m.get("content"), list) else [])
        if isinstance(part, dict) and part.get("type") == "image"
    )


class ScriptedBackend:
    """Replays given responses, for tests and demos.

    Each response is either a string or a callable `(messages, images) -> str`, which lets a
    test compute its answer from the very image the model would see.
    """

    name = "scripted"

    def __init__(
        self,
        responses: Iterable[str | Callable[[Sequence[Message], Sequence[Image.Image]], str]],
        *,
        token_delay: float = 0.0,
        repeat_last: bool = False,
    ) -> None:
        self._responses = list(responses)
        self._token_delay = token_delay
        self._repeat_last = repeat_last
        self.calls: list[tuple[list[Message], list[Image.Image]]] = []

    def generate(
        self,
        messages: Sequence[Message],
        images: Sequence[Image.Image],
        *,
        max_new_tokens: int = 512,
        on_token: TokenCallback | None = None,
        cancel: Cancel | None = None,
    ) -> Generation:
        if count_images(messages) != len(images):
            raise ValueError("messages and images disagree on the number of images")
        self.calls.append((list(messages), list(images)))
        index = len(self.calls) - 1
        if index >= len(self._responses):
            if not self._repeat_last or not self._responses:
                return Generation("", finish_reason="stop")
            index = len(self._responses) - 1
        response = self._responses[index]
        text = response(messages, images) if callable(response) else response
        start = time.perf_counter()
        # Stream word pieces like a tokenizer would, honouring cancellation between "tokens".
        pieces = _split_tokens(text)[:max_new_tokens]
        out: list[str] = []
        for piece in pieces:
            if cancel is not None and cancel.is_set():
                return Generation("".join(out), 0, len(out),
                                  {"decode": time.perf_counter() - start}, "cancelled")
            if self._token_delay:
                time.sleep(self._token_delay)
            out.append(piece)
            if on_token is not None:
                on_token(piece)
        finish = "length" if len(pieces) < len(_split_tokens(text)) else "stop"
        prompt_tokens = sum(len(str(m.get("content", ""))) // 4 for m in messages)
        return Generation("".join(out), prompt_tokens, len(out),
                          {"decode": time.perf_counter() - start}, finish)


def _split_tokens(text: str) -> list[str]:
    pieces, current = [], ""
    for ch in text:
        current += ch
        if ch in " \n":
            pieces.append(current)
            current = ""
    if current:
        pieces.append(current)
    return pieces
