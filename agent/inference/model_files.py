"""Load a model folder's small files (tokenizer, configs, chat template) and say what is wrong.

One owner for "is this file usable": `models.validate` runs these checks when a folder is
imported, downloaded or passed as `deskhand run --model DIR`, and the backends run them when
loading fails, so a broken file is named the same way in both places instead of surfacing as a
raw exception. The checks *load* each file the way the runtime will (a tokenizer.json that is
JSON but not a tokenizer fails here, not at the first step of a run).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from agent.inference.base import BackendError

ONNX = "onnx-genai"
HF = "hf"
_IMAGE_PAD = "<|image_pad|>"
# Far above any real file (Qwen's tokenizer.json is 7 MB, configs a few KB): a link to a huge
# file or a device must not be read into memory by a check.
MAX_JSON = 64 << 20
MAX_TOKENIZER = 512 << 20
_TEMPLATE_FILES = ("chat_template.jinja", "chat_template.json", "tokenizer_config.json")


# A prompt every usable tokenizer and chat template must build (one image, one line of text).
PROBE = ({"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "hi"}]},)


class FileProblem(ValueError):
    """One file of a model folder is unusable; the message names the file."""


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in `path`, or FileProblem naming the file (missing, not JSON, not an object)."""
    _check_regular(path, MAX_JSON)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # not UTF-8, not JSON, "[[[[…"
        raise FileProblem(f"{path.name} is not readable JSON ({_short(exc)})") from exc
    if not isinstance(data, dict):
        raise FileProblem(f"{path.name} is not a JSON object (found {type(data).__name__})")
    return data


def load_tokenizer(path: Path) -> tuple[Any, list[str]]:
    """The `tokenizers.Tokenizer` in `path` (None when unusable) and its problems.

    Without `tokenizers` installed (the runtime extra) the file can only be checked as JSON,
    and None comes back with no problem.
    """
    try:
        from tokenizers import Tokenizer
    except ImportError:
        try:
            data = read_json_object(path)
        except FileProblem as exc:
            return None, [str(exc)]
        return None, [] if isinstance(data.get("model"), dict) else [
            f"{path.name} has no \"model\" object: it is not a tokenizer"]
    try:
        _check_regular(path, MAX_TOKENIZER)
    except FileProblem as exc:
        return None, [str(exc)]
    try:
        return Tokenizer.from_file(str(path)), []
    except Exception as exc:  # tokenizers raises plain Exception for every parse error
        return None, [f"{path.name} cannot be loaded as a tokenizer ({_short(exc)})"]


def find_template(folder: Path) -> tuple[str | None, list[str]]:
    """The chat template (None when unusable) and its problems."""
    from agent.inference.chat import find_chat_template

    problems = []
    for name in _TEMPLATE_FILES[1:]:  # JSON files that may hold it must at least parse
        if (folder / name).is_file():
            try:
                read_json_object(folder / name)
            except FileProblem as exc:
                problems.append(str(exc))
    if problems:
        return None, problems
    try:
        return find_chat_template(folder), []
    except FileNotFoundError:
        return None, ["no chat template (chat_template.jinja, chat_template.json or "
                      "tokenizer_config.json \"chat_template\")"]
    except (OSError, ValueError, RecursionError) as exc:
        return None, [f"the chat template cannot be read ({_short(exc)})"]


def prompt_problems(folder: Path, *, image_token_id: int | None = None) -> list[str]:
    """Problems of tokenizer.json and the chat template, found by building a prompt with both.

    The prompt (one image, one line of text) goes through the runtime's own `PromptTokenizer`,
    so a folder that passes here tokenizes at the first step of a run too.
    """
    tokenizer, problems = load_tokenizer(folder / "tokenizer.json")
    template, template_problems = find_template(folder)
    problems += template_problems
    if problems or template is None:
        return problems
    from agent.inference.chat import PromptTokenizer, render_prompt

    try:
        if tokenizer is None:  # no tokenizers package: the template can still be rendered
            render_prompt(template, PROBE)
            return []
        prompts = PromptTokenizer(tokenizer, template)
        prompts.encode(PROBE, [1])
    except ImportError:
        return []  # jinja2 is part of the runtime extra; the backend says so when it loads
    except Exception as exc:  # jinja2 errors of a broken or hostile template, ValueErrors
        return [f"tokenizer.json and the chat template do not build a prompt "
                f"({type(exc).__name__}: {_short(exc)})"]
    if image_token_id is not None and prompts.image_token_id != image_token_id:
        return [f"tokenizer.json gives {_IMAGE_PAD} the id {prompts.image_token_id} but the "
                f"model config says {image_token_id}: the tokenizer belongs to another model"]
    return []


def processor_problems(path: Path) -> list[str]:
    """Problems of processor_config.json (ort-extensions format), read by the runtime's own code."""
    from agent.inference.vlm import _vision_spec  # the reader the runtime uses, not a copy

    if not path.is_file():
        return [f"{path.name} is missing"]
    try:
        spec = _vision_spec(path)
    except Exception as exc:  # any shape error of a hand-edited or foreign file
        return [f"{path.name} does not have the image processor settings Deskhand reads "
                f"({type(exc).__name__}: {_short(exc)})"]
    return [f"{path.name}: {p}" for p in vision_spec_problems(spec)]


def vision_spec_problems(spec: Any) -> list[str]:
    """Values of a VisionSpec that would fail mid-run (division by zero, NaN pixels)."""
    problems = [f"{name} must be a positive integer, not {value!r}"
                for name, value in (("patch_size", spec.patch), ("merge_size", spec.merge),
                                    ("temporal_patch_size", spec.temporal)) if value < 1]
    numbers = [*spec.mean, *spec.std, spec.rescale]
    if len(spec.mean) != 3 or len(spec.std) != 3:
        problems.append("mean and std need three values (RGB)")
    if not all(isinstance(v, int | float) and math.isfinite(v) for v in numbers) or \
            any(v == 0 for v in spec.std) or spec.rescale == 0:
        problems.append("mean, std and rescale_factor must be finite numbers (std and rescale "
                        "not zero)")
    return problems


def folder_problems(folder: Path, fmt: str) -> list[str]:
    """Problems of the small files a backend loads from `folder` ("onnx-genai" or "hf")."""
    folder = Path(folder)
    problems: list[str] = []
    image_token_id = None
    config_name = "genai_config.json" if fmt == ONNX else "config.json"
    try:
        config = read_json_object(folder / config_name)
        model = config.get("model") if fmt == ONNX else config
        if isinstance(model, dict):
            raw = model.get("image_token_id")
            image_token_id = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
    except FileProblem as exc:
        problems.append(str(exc))
    problems += prompt_problems(folder, image_token_id=image_token_id)
    from agent.prompts import declared_system_prompt  # agent.prompts imports the backends' base

    try:
        declared_system_prompt(folder)
    except ValueError as exc:
        problems.append(str(exc))
    if fmt == ONNX:
        problems += processor_problems(folder / "processor_config.json")
    else:
        for name in ("preprocessor_config.json", "generation_config.json"):
            if (folder / name).is_file() or name == "preprocessor_config.json":
                try:
                    read_json_object(folder / name)
                except FileProblem as exc:
                    problems.append(str(exc))
    return problems


def load_error(folder: Path, fmt: str, exc: BaseException) -> str:
    """A user message for a failed backend load: the broken file when one is found."""
    try:
        problems = folder_problems(folder, fmt)
    except Exception:  # diagnosis must never hide the original failure
        problems = []
    if problems:
        return f"cannot load the model in {folder}: " + "; ".join(problems)
    if isinstance(exc, BackendError):  # already a message for users (a bad graph, a provider)
        return str(exc)
    return f"cannot load the model in {folder}: {type(exc).__name__}: {_short(exc)}"


def _check_regular(path: Path, limit: int) -> None:
    """FileProblem unless `path` is a regular file (a FIFO would block a read) of sane size."""
    try:
        if not path.is_file():
            raise FileProblem(f"{path.name} is missing" + (" (or not a regular file)"
                                                           if path.exists() else ""))
        size = path.stat().st_size
    except OSError as exc:
        raise FileProblem(f"{path.name} cannot be read ({exc.strerror or exc})") from exc
    if size > limit:
        raise FileProblem(f"{path.name} has {size} bytes, more than any such file needs")


def _short(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= 300 else text[:300] + "…"
