"""The one backend factory: model spec strings, each kind built, and user-facing errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.inference.base import BackendError, ScriptedBackend
from agent.inference.factory import (
    ModelKind,
    ModelSpec,
    RuntimeOptions,
    build_backend,
    parse_model_spec,
)
from tests.support.model_inputs import agent_messages, noise_images

IMAGE_MESSAGES = [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]


@pytest.mark.parametrize(("text", "kind", "target"), [
    ("server:http://127.0.0.1:8000/v1", ModelKind.SERVER, "http://127.0.0.1:8000/v1"),
    ("scripted:/tmp/replies.json", ModelKind.SCRIPTED, "/tmp/replies.json"),
    ("onnx:/models/fara-int4", ModelKind.ONNX, "/models/fara-int4"),
    ("reference:~/hf/fara", ModelKind.REFERENCE, "~/hf/fara"),
    ("fara-7b-int4", ModelKind.FOLDER, "fara-7b-int4"),
    ("/models/fara", ModelKind.FOLDER, "/models/fara"),
    (r"C:\models\fara", ModelKind.FOLDER, r"C:\models\fara"),  # a drive letter is no prefix
    ("  server:http://localhost:8000/v1 ", ModelKind.SERVER, "http://localhost:8000/v1"),
])
def test_parse_model_spec(text: str, kind: ModelKind, target: str) -> None:
    spec = parse_model_spec(text)
    assert (spec.kind, spec.target, spec.allow_lan) == (kind, target, False)


def test_spec_is_frozen_and_typed() -> None:
    spec = ModelSpec("server", "http://127.0.0.1:1/v1")  # type: ignore[arg-type]
    assert spec.kind is ModelKind.SERVER
    with pytest.raises(AttributeError):
        spec.target = "x"  # type: ignore[misc]
    assert parse_model_spec("server:http://10.0.0.2/v1", allow_lan=True).allow_lan


@pytest.mark.parametrize("text", ["", "   ", "server:", "onnx:  "])
def test_bad_specs_are_backend_errors(text: str) -> None:
    with pytest.raises(BackendError):
        parse_model_spec(text)


def test_unknown_kind_refused() -> None:
    with pytest.raises(ValueError):
        ModelSpec("gguf", "x")  # type: ignore[arg-type]


def test_scripted_from_a_file_and_from_replies(tmp_path: Path) -> None:
    script = tmp_path / "replies.json"
    script.write_text(json.dumps(["first", "second"]))
    backend = build_backend(parse_model_spec(f"scripted:{script}"))
    assert isinstance(backend, ScriptedBackend)
    assert backend.generate(IMAGE_MESSAGES, []).text == "first"
    direct = build_backend(ModelSpec(ModelKind.SCRIPTED, replies=("only",)))
    assert direct.generate(IMAGE_MESSAGES, []).text == "only"


@pytest.mark.parametrize(("content", "message"), [
    ({"not": "a list"}, "JSON list of strings"),
    ([1, 2], "JSON list of strings"),
    (None, "cannot read --script"),
])
def test_bad_script_files(tmp_path: Path, content: object, message: str) -> None:
    script = tmp_path / "replies.json"
    if content is not None:
        script.write_text(json.dumps(content))
    with pytest.raises(BackendError, match=message):
        build_backend(ModelSpec(ModelKind.SCRIPTED, str(script)))


def test_server_spec_builds_the_server_backend_and_keeps_the_loopback_rule() -> None:
    from agent.inference.openai_compat import OpenAICompatBackend

    backend = build_backend(ModelSpec(ModelKind.SERVER, "http://127.0.0.1:9/v1", server_model="m"))
    assert isinstance(backend, OpenAICompatBackend) and backend.model == "m"
    with pytest.raises(BackendError, match="refusing to send screenshots"):
        build_backend(parse_model_spec("server:http://10.1.2.3:8000/v1"))
    lan = build_backend(parse_model_spec("server:http://10.1.2.3:8000/v1", allow_lan=True))
    assert isinstance(lan, OpenAICompatBackend)


def test_folder_errors_are_user_facing(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="no such directory"):
        build_backend(parse_model_spec(str(tmp_path / "missing")))
    with pytest.raises(BackendError, match="neither an onnxruntime-genai model folder"):
        build_backend(parse_model_spec(str(tmp_path)))


def test_names_go_through_the_given_resolver(tmp_path: Path) -> None:
    asked: list[str] = []

    def resolve(name: str) -> Path:
        asked.append(name)
        return tmp_path  # an empty folder: resolved, then refused for what it holds

    with pytest.raises(BackendError, match="neither"):
        build_backend(parse_model_spec("fara-7b"), resolve=resolve)
    assert asked == ["fara-7b"]


def test_onnx_folder_goes_to_the_host_when_given(tmp_path: Path) -> None:
    (tmp_path / "genai_config.json").write_text("{}")
    hosted: list[tuple[str, str]] = []
    sentinel = ScriptedBackend([])

    def host(folder: str, provider: str) -> ScriptedBackend:
        hosted.append((folder, provider))
        return sentinel

    spec = parse_model_spec(str(tmp_path))
    assert build_backend(spec, provider="cpu", host=host) is sentinel
    assert hosted == [(str(tmp_path), "cpu")]


def test_missing_runtime_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    (tmp_path / "genai_config.json").write_text("{}")
    monkeypatch.setitem(sys.modules, "agent.inference.onnx", None)  # as if not installed
    with pytest.raises(BackendError, match=r"pip install 'deskhand\[onnx\]'"):
        build_backend(parse_model_spec(f"onnx:{tmp_path}"))


# --- real models (the tiny checkpoint and its export) ------------------------------------------

def test_folder_kinds_build_the_real_runtimes(export_fp32: Path, tiny_checkpoint: Path) -> None:
    pytest.importorskip("onnxruntime")
    from agent.inference.onnx import OnnxBackend
    from agent.inference.reference import ReferenceBackend

    assert isinstance(build_backend(parse_model_spec(str(export_fp32)), provider="cpu"),
                      OnnxBackend)
    reference = build_backend(parse_model_spec(f"reference:{tiny_checkpoint}"),
                              options=RuntimeOptions(dtype="bfloat16"))
    assert isinstance(reference, ReferenceBackend)
    with pytest.raises(BackendError, match="not an exported model folder"):
        build_backend(parse_model_spec(f"onnx:{tiny_checkpoint}"))


def test_fixed_length_decodes_exactly_the_limit(export_fp32: Path) -> None:
    pytest.importorskip("onnxruntime")
    messages, images = agent_messages(1), noise_images(1, (56, 56), seed=3)
    fixed = build_backend(ModelSpec(ModelKind.ONNX, str(export_fp32)), provider="cpu",
                          options=RuntimeOptions(fixed_length=True))
    for n in (1, 7, 20):
        gen = fixed.generate(messages, images, max_new_tokens=n)
        assert gen.generated_tokens == n and gen.finish_reason == "length"
