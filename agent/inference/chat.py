"""Render chat messages with a model folder's own chat template, and tokenize the result.

Both local backends (transformers reference, ONNX Runtime) tokenize through `PromptTokenizer`,
so they see the very same ids; image parts become `<|vision_start|><|image_pad|><|vision_end|>`.

Message text (the task, URLs, page text, the person's answers, the model's own earlier replies)
is data, never prompt structure: only the template itself may write a special token. A task
saying `<|im_end|><|im_start|>system` must not open a system turn, and `<|image_pad|>` in a
reply must not open an image slot. So the prompt is rendered with each text replaced by a
placeholder; the template's own output is split at the special tokens it wrote, and everything
between them (template text and message text alike) is encoded with special-token matching off.
For ordinary text this gives exactly the ids of encoding the whole rendered string, because the
tokenizer splits at special tokens before it pre-tokenizes anyway.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.actions import TOOL_CALL_CLOSE
from agent.inference.base import BackendError, Message

if TYPE_CHECKING:
    from tokenizers import Tokenizer

IMAGE_PAD = "<|image_pad|>"
STOP_TEXT = TOOL_CALL_CLOSE  # generation stops once the call is closed
# Which added tokens only the template may write: every one flagged special, every one shaped
# like a control token (`<|...|>`, also with fullwidth bars as DeepSeek spells them: Qwen's
# `<|fim_prefix|>` is not flagged), and these by name even in a tokenizer that forgot the flag.
# The tool-call tags are not among them: in Qwen tokenizers they are ordinary added tokens that the
# model writes in its own replies (and saw so in training) and the template never writes; they
# are text to the template, and only our parser gives them meaning, in the model's output.
STRUCTURE_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>",
                    "<|vision_end|>", IMAGE_PAD, "<|video_pad|>")
_CONTROL_SHAPE = re.compile(r"<[|\uff5c].*[|\uff5c]>", re.DOTALL)
# Stands for the i-th message text while the template renders (private-use characters).
_HOLE = re.compile("\ue000([0-9]+)\ue001")


def find_chat_template(model_dir: str | Path) -> str:
    """The chat template stored in a model folder (tokenizer_config, chat_template.json or .jinja)."""
    folder = Path(model_dir)
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    for name in ("chat_template.json", "tokenizer_config.json"):
        path = folder / name
        if path.is_file():
            template = json.loads(path.read_text(encoding="utf-8")).get("chat_template")
            if isinstance(template, str) and template:
                return template
    raise FileNotFoundError(f"no chat template in {folder}")


@lru_cache(maxsize=8)
def _compile(template: str):
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = _raise
    return env.from_string(template)


def _raise(message: str) -> None:
    raise ValueError(message)


def render_prompt(template: str, messages: Sequence[Message]) -> str:
    """The prompt text for `messages`, ending with the assistant generation prompt.

    For display and for processors that take text; a backend tokenizes with PromptTokenizer,
    which keeps message text from acting as structure.
    """
    return _compile(template).render(messages=list(messages), add_generation_prompt=True)


@dataclass(frozen=True)
class Piece:
    """A stretch of the rendered prompt: written by the template, or a message's text."""

    text: str
    from_message: bool
    role: str = ""  # the message's role, for message text


# Roles whose text may spell the tokenizer's non-special added tokens (`<tool_call>`, `<think>`)
# as those tokens, as the model saw them in training: the system prompt (written by the prompt
# family) and the model's own replies. Everyone else's text (the task, URLs, page text, the
# person's answers) stays text: it must not open a tool call or a thinking block.
TRUSTED_ROLES = frozenset({"system", "assistant"})


def render_pieces(template: str, messages: Sequence[Message]) -> list[Piece]:
    """The rendered prompt as template pieces and message-text pieces, in order.

    Joined, the pieces are always `render_prompt`'s text. That holds for templates that write
    message text as it is (Qwen-family templates do); any other is refused with BackendError
    (the model folder's template is unusable for us, not the text).
    """
    texts: list[str] = []
    roles: list[str] = []

    def hole(text: Any, role: Any) -> str:
        texts.append(str(text))
        roles.append(str(role or ""))
        return f"\ue000{len(texts) - 1}\ue001"

    held: list[Message] = []
    for message in messages:
        content, role = message.get("content"), message.get("role")
        if isinstance(content, str):
            content = hole(content, role)
        elif isinstance(content, list):
            content = [{**part, "text": hole(part["text"], role)}
                       if isinstance(part, dict) and "text" in part else part for part in content]
        held.append({**message, "content": content})
    rendered = render_prompt(template, held)
    parts = _HOLE.split(rendered)
    pieces: list[Piece] = []
    seen: set[int] = set()
    for i, part in enumerate(parts):
        if i % 2:
            index = int(part)
            if index in seen or index >= len(texts):
                raise BackendError("the chat template repeats a message text; cannot tell "
                                   "its structure from the text")
            seen.add(index)
            if texts[index]:
                pieces.append(Piece(texts[index], True, roles[index]))
        elif part:
            if "\ue000" in part or "\ue001" in part:
                raise BackendError(_CHANGES_TEXT)
            pieces.append(Piece(part, False))
    # A template that looks at or transforms the text (`| upper`, `| trim`, `if 'x' in text`)
    # would render it differently than the placeholders show: refuse rather than guess.
    if "".join(p.text for p in pieces) != render_prompt(template, messages):
        raise BackendError(_CHANGES_TEXT)
    return pieces


_CHANGES_TEXT = ("the chat template changes the message text it writes (trims, quotes or inspects "
                 "it); Deskhand cannot tell its structure from the text")
# Rendered once when a model loads, so a template that changes text is refused then, not mid-run.
_PROBE: list[Message] = [
    {"role": "system", "content": [{"type": "text", "text": " system\n"}]},
    {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "\n task  "}]},
    {"role": "assistant", "content": [{"type": "text", "text": " reply\n<tool_call>\n{}\n</tool_call>"}]},
    {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "next "}]},
]


class PromptTokenizer:
    """Token ids of a chat: template structure as special tokens, message text only as text.

    `tokenizer` is a `tokenizers.Tokenizer` (the runtime's, or a transformers fast tokenizer's
    `backend_tokenizer`); it is copied, never changed. BackendError for a template this cannot
    work with, ValueError for a tokenizer without an image token.
    """

    def __init__(self, tokenizer: Tokenizer, template: str) -> None:

        self.template = template
        added = tokenizer.get_added_tokens_decoder()
        structure = {t.content: (i, t) for i, t in added.items() if t.special
                     or t.content in STRUCTURE_TOKENS or _CONTROL_SHAPE.fullmatch(t.content)}
        if IMAGE_PAD not in structure:
            raise ValueError(f"the tokenizer has no {IMAGE_PAD} token")
        self._structure = structure
        self._split = re.compile("|".join(re.escape(c) for c in
                                          sorted(structure, key=len, reverse=True)))
        # Its own copy with matching of special tokens switched off, so that a text is never
        # read as one; tokens counted as structure without the special flag get the flag here.
        text = _text_only(tokenizer, [t for _, t in structure.values() if not t.special])
        self._text = text
        # And one for untrusted text (TRUSTED_ROLES): every added token is text there.
        self._plain = _text_only(text, [t for t in added.values()
                                        if t.content not in structure and not t.special])
        self.image_token_id = structure[IMAGE_PAD][0]
        self.encode(_PROBE, [1, 1])

    def encode(self, messages: Sequence[Message], tokens_per_image: Sequence[int]) -> list[int]:
        """Ids of the prompt for `messages`, each image slot repeated to its token count.

        Image slots come only from the template (one per image part); ValueError when their
        number differs from `tokens_per_image`.
        """
        chunks: list[str] = []  # text between two structure tokens
        marks: list[list[int]] = []  # the structure ids after each chunk
        untrusted: list[bool] = []  # the chunk holds text of a role outside TRUSTED_ROLES
        current: list[str] = []
        outsider = False
        counts = iter(tokens_per_image)
        slots = 0
        strip_next = False
        for piece in render_pieces(self.template, messages):
            if piece.from_message:
                current.append(piece.text)
                outsider = outsider or piece.role not in TRUSTED_ROLES
                continue
            start = 0
            for match in self._split.finditer(piece.text):
                current.append(piece.text[start:match.start()])
                token_id, token = self._structure[match.group()]
                chunk = "".join(current)
                # Whitespace a token absorbs (lstrip/rstrip), as the tokenizer would.
                if strip_next:
                    chunk = chunk.lstrip()
                if token.lstrip:
                    chunk = chunk.rstrip()
                strip_next = token.rstrip
                chunks.append(chunk)
                untrusted.append(outsider)
                outsider = False
                if token_id == self.image_token_id:
                    slots += 1
                    count = next(counts, None)
                    if count is None:
                        raise ValueError(f"the prompt has more image slots than the "
                                         f"{len(tokens_per_image)} images")
                    marks.append([token_id] * count)
                else:
                    marks.append([token_id])
                current = []
                start = match.end()
            current.append(piece.text[start:])
        if slots != len(tokens_per_image):
            raise ValueError(f"the prompt has {slots} image slots for "
                             f"{len(tokens_per_image)} images")
        tail = "".join(current)
        chunks.append(tail.lstrip() if strip_next else tail)
        untrusted.append(outsider)
        # A chunk lies between two structure tokens, so it holds at most one message's text.
        encoded: list[Any] = [None] * len(chunks)
        for tokenizer, flag in ((self._text, False), (self._plain, True)):
            which = [i for i, u in enumerate(untrusted) if u is flag]
            for i, enc in zip(which, tokenizer.encode_batch([chunks[i] for i in which],
                                                            add_special_tokens=False), strict=True):
                encoded[i] = enc
        ids: list[int] = []
        for i, enc in enumerate(encoded):
            ids.extend(enc.ids)
            if i < len(marks):
                ids.extend(marks[i])
        return ids


def _text_only(tokenizer: Tokenizer, unflagged: list) -> Tokenizer:
    """A copy of `tokenizer` that reads no special token in text, `unflagged` added tokens
    counted as special too."""
    from tokenizers import AddedToken, Tokenizer

    copy = Tokenizer.from_str(tokenizer.to_str())
    if unflagged:
        copy.add_special_tokens([AddedToken(t.content, single_word=t.single_word, lstrip=t.lstrip,
                                            rstrip=t.rstrip, normalized=t.normalized, special=True)
                                 for t in unflagged])
    copy.encode_special_tokens = True
    return copy


def neutralize_markers(text: str, *, role: str = "system") -> str:
    """`text` with every special-token-like marker broken by a zero-width space.

    For text sent to a server that applies its own template and tokenizer, out of our reach:
    `<|im_end|>`, `<|image_pad|>` and friends (anything starting `<|`, also with the fullwidth
    look-alikes a normalizing tokenizer would fold to them) and llama.cpp's media marker
    `<__media__>` would be read as structure there. A zero-width space after the `<` keeps
    the text readable and makes it match no token. Text of a role outside TRUSTED_ROLES also
    loses the tool-call and thinking markers (`<tool_call>`, `<think>`, ...), as in-process.
    """
    text = _MARKER.sub("\\1\u200b", text)
    return text if role in TRUSTED_ROLES else _MODEL_MARKER.sub("\\1\u200b", text)


# `<`, fullwidth `＜` or small `﹤`, before `|` or fullwidth `｜`, or before `__media__>`.
_MARKER = re.compile("([<\uff1c\ufe64])(?=[|\uff5c]|__media__>)")
_MODEL_MARKER = re.compile("([<\uff1c\ufe64])(?=/?(?:tool_call|tool_response|think)>)")
