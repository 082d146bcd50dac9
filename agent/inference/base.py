"""The `Backend` base class every inference implementation subclasses, and a scripted test double.

Messages use the chat format of Qwen2.5-VL processors: a list of
`{"role": "system" | "user" | "assistant", "content": [{"type": "text", "text": ...} | {"type": "image"}]}`
and `images` holds one PIL image (already at model size) per `{"type": "image"}` item, in order.

`Backend.generate` is written once, here: it refuses messages and images that disagree, answers
an already-set cancel flag without touching the model, and times the call. A backend implements
only `_generate(request)`, reading `request.cancelled()` between tokens and streaming through
`request.emit(piece)`. Why generation ended is one of the `FinishReason` values.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from PIL import Image

from agent.options import MAX_NEW_TOKENS

if TYPE_CHECKING:
    from agent.prompts import SecondLook
    from agent.replay.backend import ReplayCheck

Message = dict[str, Any]
TokenCallback = Callable[[str], None]


class Cancel(Protocol):
    """Anything with `is_set()`; `threading.Event` and `agent.safety.StopFlag` qualify."""

    def is_set(self) -> bool: ...


class BackendError(RuntimeError):
    """A backend cannot run (unusable model folder, provider, server); the message is for users."""


class FinishReason(StrEnum):
    """Why generation ended (a str, so records and the model process keep plain strings)."""

    STOP = "stop"            # end of the tool call, or end of sequence
    LENGTH = "length"        # the token limit (or a server's size limit)
    CANCELLED = "cancelled"  # the cancel flag was set


@dataclass(frozen=True)
class Generation:
    """One model answer with its cost."""

    text: str
    prompt_tokens: int = 0
    generated_tokens: int = 0
    # Seconds per phase, e.g. {"vision": .., "prefill": .., "decode": .., "total": ..};
    # backends fill what they know, `Backend.generate` adds "total" when they leave it out.
    timings: dict[str, float] = field(default_factory=dict)
    finish_reason: str = FinishReason.STOP
    # Prompt tokens whose keys and values came from the previous call, and screenshots whose
    # features were cached, instead of being computed again (backends that cache fill these).
    cached_tokens: int = 0
    cached_images: int = 0
    # Set only by `agent.replay.ReplayBackend`: how a recorded step was checked on the screen.
    replay: ReplayCheck | None = None

    def __post_init__(self) -> None:
        # Refuses a reason outside the enum (a typo, or a child process saying something odd).
        object.__setattr__(self, "finish_reason", FinishReason(self.finish_reason))

    @property
    def tokens_per_second(self) -> float:
        decode = self.timings.get("decode", 0.0)
        return self.generated_tokens / decode if decode > 0 else 0.0


def count_images(messages: Sequence[Message]) -> int:
    """How many image placeholders the messages hold."""
    return sum(
        1
        for m in messages
        for part in (m.get("content") if isinstance(m.get("content"), list) else [])
        if isinstance(part, dict) and part.get("type") == "image"
    )


def check_images(messages: Sequence[Message], images: Sequence[Image.Image]) -> None:
    """ValueError unless there is one image per image placeholder (our bug, never the model's)."""
    if count_images(messages) != len(images):
        raise ValueError("messages and images disagree on the number of images")


@dataclass(frozen=True)
class Request:
    """One `generate` call as a backend's `_generate` sees it."""

    messages: Sequence[Message]
    images: Sequence[Image.Image]
    max_new_tokens: int = MAX_NEW_TOKENS
    on_token: TokenCallback | None = None
    cancel: Cancel | None = None
    started: float = field(default_factory=time.perf_counter)

    def cancelled(self) -> bool:
        """True once the cancel flag is set (checked between tokens)."""
        return self.cancel is not None and self.cancel.is_set()

    def emit(self, piece: str) -> None:
        """Stream one piece of text to the caller."""
        if piece and self.on_token is not None:
            self.on_token(piece)

    def elapsed(self) -> float:
        """Seconds since the call started."""
        return time.perf_counter() - self.started

    def pass_to(self, backend: Backend, *, on_token: TokenCallback | None = None) -> Generation:
        """This request asked of `backend`: how a wrapper (pausing, announcing) calls its inner one.

        The inner `generate` checks the images and the cancel flag again. That is harmless and
        wanted: the check is pure, and a cancel set while the wrapper waited (a pause) must
        still keep the model from starting. Its "total" time is kept by the outer call.
        """
        return backend.generate(self.messages, self.images, max_new_tokens=self.max_new_tokens,
                                on_token=self.on_token if on_token is None else on_token,
                                cancel=self.cancel)


class Backend(ABC):
    """What the agent loop needs from a model; every backend subclasses it.

    Subclasses set `name` and implement `_generate`; they may refuse more (image sizes, say),
    but the image-count check, the cancel-before-start answer and the total time live here.
    """

    name: str = "model"
    # The prompt family its model was trained with (`agent.prompts`); the factory names it from
    # the model folder, and wrappers pass it on with `name` (`wraps`).
    family: str = "fara"
    # The system prompt the model folder declares for itself (agent.prompts.PROMPT_FILE), or
    # None for the family's own; set by the factory like `family`.
    system_prompt: str | None = None
    # The model image's pixel limit its folder declares (agent.prompts.declared_max_pixels), or
    # None; set by the factory like `family`.
    max_pixels: int | None = None
    # The second look its folder declares before acting on a point (region and regions looked
    # at: agent.prompts.declared_second_look, agent.second_look), or None; set like `family`.
    second_look: SecondLook | None = None

    def wraps(self, inner: object) -> None:
        """Take `inner`'s name and prompt (family, declared system prompt, image limit and second
        look): a wrapper the loop sees must be prompted as the model it wraps."""
        self.name = getattr(inner, "name", "model")
        self.family = getattr(inner, "family", self.family)
        self.system_prompt = getattr(inner, "system_prompt", None)
        self.max_pixels = getattr(inner, "max_pixels", None)
        self.second_look = getattr(inner, "second_look", None)

    def generate(
        self,
        messages: Sequence[Message],
        images: Sequence[Image.Image],
        *,
        max_new_tokens: int = MAX_NEW_TOKENS,
        on_token: TokenCallback | None = None,
        cancel: Cancel | None = None,
    ) -> Generation:
        """Greedy generation until the end of the tool call, EOS, the token limit or cancel."""
        check_images(messages, images)
        request = Request(messages, images, max_new_tokens, on_token, cancel)
        if request.cancelled():
            return Generation("", timings={"total": 0.0}, finish_reason=FinishReason.CANCELLED)
        gen = self._generate(request)
        if "total" in gen.timings:
            return gen
        return replace(gen, timings={**gen.timings, "total": request.elapsed()})

    @abstractmethod
    def _generate(self, request: Request) -> Generation:
        """The backend's own generation; the request is already checked."""


class ScriptedBackend(Backend):
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

    def _generate(self, request: Request) -> Generation:
        messages, images = request.messages, request.images
        self.calls.append((list(messages), list(images)))
        index = len(self.calls) - 1
        if index >= len(self._responses):
            if not self._repeat_last or not self._responses:
                return Generation("", finish_reason=FinishReason.STOP)
            index = len(self._responses) - 1
        response = self._responses[index]
        text = response(messages, images) if callable(response) else response
        start = time.perf_counter()
        # Stream word pieces like a tokenizer would, honouring cancellation between "tokens".
        pieces = _split_tokens(text)[:request.max_new_tokens]
        out: list[str] = []
        for piece in pieces:
            if request.cancelled():
                return Generation("".join(out), 0, len(out),
                                  {"decode": time.perf_counter() - start}, FinishReason.CANCELLED)
            if self._token_delay:
                time.sleep(self._token_delay)
            out.append(piece)
            request.emit(piece)
        finish = FinishReason.LENGTH if len(pieces) < len(_split_tokens(text)) else FinishReason.STOP
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
