"""The model under test is built by the one backend factory; registered names are resolved by
the resolver the command line hands in, never by the harness importing the CLI or the registry."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from agent.errors import UserError
from agent.eval.model import load_model_backend, model_fingerprint, model_folder
from agent.eval.settings import EvalSettings


def _resolver_calls() -> tuple[list[str], object]:
    calls: list[str] = []

    def resolve(name: str) -> Path:
        calls.append(name)
        raise UserError(f"no model {name!r}")

    return calls, resolve


def test_a_server_backend_is_built_without_the_command_line() -> None:
    code = (
        "import json, sys\n"
        "from agent.eval.model import load_model_backend\n"
        "backend = load_model_backend('server:http://127.0.0.1:9/v1')\n"
        "print(json.dumps([type(backend).__name__, backend.base_url,\n"
        "                  [m for m in sys.modules if m.split('.')[0] in ('app', 'models')]]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    name, url, loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert (name, url, loaded) == ("OpenAICompatBackend", "http://127.0.0.1:9/v1", [])


def test_a_public_server_is_refused_as_a_user_error() -> None:
    with pytest.raises(UserError, match="refusing to send screenshots"):
        load_model_backend("server:http://203.0.113.5:8000/v1")


def test_a_registered_name_goes_through_the_handed_in_resolver() -> None:
    calls, resolve = _resolver_calls()
    with pytest.raises(UserError, match="no model 'fara-q4'"):
        load_model_backend("fara-q4", resolve=resolve)  # type: ignore[arg-type]
    assert calls == ["fara-q4"]


def test_without_a_resolver_the_model_must_be_a_folder(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not a model folder"):
        model_folder("fara-q4")
    assert model_folder(str(tmp_path)) == tmp_path
    with pytest.raises(UserError, match="neither an onnxruntime-genai"):
        load_model_backend(str(tmp_path))  # an empty folder: no runtime claims it


def test_the_fingerprint_reads_the_resolved_folder(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"x" * 10)
    print_of = model_fingerprint("fara-q4", lambda _name: tmp_path)
    assert print_of == model_fingerprint(str(tmp_path)) != "fara-q4"
    (tmp_path / "model.onnx").write_bytes(b"x" * 11)
    assert model_fingerprint("fara-q4", lambda _name: tmp_path) != print_of
    _, failing = _resolver_calls()
    assert model_fingerprint("fara-q4", failing) == "fara-q4"  # type: ignore[arg-type]


def test_the_deskhand_command_hands_the_registry_resolver_to_eval(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.eval import runner
    from app.commands import main
    from app.commands.backends import resolve_model_folder

    seen: list[EvalSettings] = []

    def run_eval(settings: EvalSettings, **_kw: object) -> None:
        seen.append(settings)
        raise KeyboardInterrupt  # stop here: what matters is what the harness was given

    monkeypatch.setattr(runner, "run_eval", run_eval)
    tasks = tmp_path / "t.jsonl"
    tasks.write_text("", encoding="utf-8")
    assert main(["eval", "run", "--model", "fara-q4", "--tasks", str(tasks)]) == 130
    assert seen[0].model == "fara-q4" and seen[0].resolve_model is resolve_model_folder


def test_the_resolver_travels_to_workers_and_stays_out_of_the_hash(tmp_path: Path) -> None:
    from app.commands.backends import resolve_model_folder

    tasks = tmp_path / "t.jsonl"
    tasks.write_text("", encoding="utf-8")
    plain = EvalSettings(tasks=tasks, model="server:http://127.0.0.1:1/v1")
    handed = EvalSettings(tasks=tasks, model="server:http://127.0.0.1:1/v1",
                          resolve_model=resolve_model_folder)
    assert handed == plain and handed.manifest() == plain.manifest()
    assert pickle.loads(pickle.dumps(handed)).resolve_model is resolve_model_folder
