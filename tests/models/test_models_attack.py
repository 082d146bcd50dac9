"""Model files a user, a mirror or a hostile process can break: registry, model folders, downloads.

Each test here failed on the code before the fix (issue 10, "Records and files that a model or a
file can break"); the fakes are the ones of test_registry (model folders) and test_download (a
loopback Hugging Face Hub).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.paths import models_dir
from models.download import download_model
from models.download_guard import redirect_refusal, unsafe_path
from models.importing import import_model
from models.manifest import write_manifest
from models.registry import ModelError, Registry, check_name, resolve_model
from models.validate import validate_folder
from tests.models.test_download import repo_files
from tests.models.test_registry import make_genai_folder, run_cli
from tests.support.fake_hub import BIG, COMMIT, REPO, FakeHub, HubHandler

ROOT = Path(__file__).resolve().parents[2]


def entry(name: str, path: Path, **changes) -> dict:
    """A registry.json entry as `Registry.add` writes it."""
    return {"name": name, "path": str(path), "format": "onnx-genai", "source": "import:x",
            "size_bytes": 10, "added": "2026-12-01T00:00:00+00:00", "owned": False,
            "model_type": "fara", "manifest": None, **changes}


def write_index(content: str | bytes) -> Path:
    index = models_dir() / "registry.json"
    index.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        index.write_bytes(content)
    else:
        index.write_text(content)
    return index


# --- 1. registry.json that is damaged or hand-edited -------------------------------------

DAMAGED = {
    "list": "[]",
    "null": "null",
    "invalid JSON": '{"version": 1, "models": [',
    "models not a list": '{"models": 5}',
    "not UTF-8": b'{"models": [\xff]}',
    "nested too deep": "[" * 100_000 + "]" * 100_000,
}


@pytest.mark.parametrize("content", DAMAGED.values(), ids=DAMAGED.keys())
def test_unreadable_registry_is_named_and_kept_before_rewriting(tmp_path, content, capsys) -> None:
    index = write_index(content)
    original = index.read_bytes()
    registry = Registry()
    assert registry.entries() == []  # no AttributeError, no traceback
    assert any(str(index) in note for note in registry.notes), registry.notes
    assert run_cli("list") == 0
    assert str(index) in capsys.readouterr().err
    # Writing the registry keeps what could not be read, byte for byte, and says where.
    assert run_cli("import", str(make_genai_folder(tmp_path / "m")), "--name", "m") == 0
    err = capsys.readouterr().err
    backups = list(index.parent.glob("registry.json.broken-*"))
    assert len(backups) == 1 and backups[0].read_bytes() == original
    assert str(backups[0]) in err
    assert [e.name for e in Registry().entries()] == ["m"] and Registry().notes == []


BAD_ENTRIES = {
    "partial": {"name": "half"},
    "not an object": ["x"],
    "size as text": {"size_bytes": "big"},
    "size as bool": {"size_bytes": True},
    "owned as text": {"owned": "yes"},
    "path as number": {"path": 5},
    "bad name": {"name": "../evil"},
    "name with newline": {"name": "fara\n"},
    "unknown format": {"format": "gguf"},
    "manifest as list": {"manifest": []},
    "relative path": {"path": "models/x"},
    "escape in path": {"path": "/tmp/\x1b[2Kmodel"},
}


@pytest.mark.parametrize("change", BAD_ENTRIES.values(), ids=BAD_ENTRIES.keys())
def test_a_bad_entry_is_skipped_and_the_others_stay_usable(tmp_path, change, capsys) -> None:
    good = make_genai_folder(tmp_path / "good")
    whole = change in (BAD_ENTRIES["partial"], BAD_ENTRIES["not an object"])
    bad = change if whole else entry("broken", tmp_path) | change
    index = write_index(json.dumps({"version": 1, "default": "good",
                                    "models": [bad, entry("good", good)]}))
    registry = Registry()
    assert [e.name for e in registry.entries()] == ["good"]
    assert resolve_model("good") == good and registry.default == "good"
    assert any(str(index) in n and "entry 1" in n for n in registry.notes), registry.notes
    with pytest.raises(ModelError, match="entry 1"):  # asking for it explains why it is gone
        resolve_model("broken")
    assert run_cli("default", "good") == 0  # a write: the skipped entry survives in a backup
    assert "kept as" in capsys.readouterr().err
    backup = next(index.parent.glob("registry.json.broken-*"))
    assert json.loads(backup.read_text())["models"][0] == bad


def test_registry_default_of_wrong_type_is_ignored(tmp_path) -> None:
    good = make_genai_folder(tmp_path / "good")
    write_index(json.dumps({"default": ["good"], "models": [entry("good", good)]}))
    assert Registry().default is None and resolve_model() == good


def test_names_ending_in_a_newline_are_refused() -> None:
    with pytest.raises(ModelError, match="invalid model name"):
        check_name("fara\n")


def test_remove_deletes_only_the_entrys_own_folder(tmp_path) -> None:
    """A hand-edited index marks another model's folder as owned: remove must not delete it."""
    other = make_genai_folder(models_dir() / "other")
    write_index(json.dumps({"models": [entry("other", other, owned=True),
                                       entry("thief", other, owned=True)]}))
    _, deleted = Registry().remove("thief")
    assert not deleted and (other / "model.onnx").is_file()
    # Its own folder, reached through a link planted in the registry folder: kept too.
    target = make_genai_folder(tmp_path / "precious")
    (models_dir() / "linked").symlink_to(target)
    write_index(json.dumps({"models": [entry("linked", models_dir() / "linked", owned=True)]}))
    _, deleted = Registry().remove("linked")
    assert not deleted and (target / "model.onnx").is_file()


def test_unwritable_models_folder_is_a_message(tmp_path, capsys) -> None:
    models_dir().parent.mkdir(parents=True, exist_ok=True)
    models_dir().write_text("not a folder")  # works even as root, unlike chmod
    assert run_cli("import", str(make_genai_folder(tmp_path / "m"))) == 2
    err = capsys.readouterr().err
    assert "cannot" in err and str(models_dir()) in err and "Traceback" not in err


# --- 2. model folders whose small files are broken ---------------------------------------

def runnable_genai_folder(path: Path) -> Path:
    """A fake folder whose genai_config has what the runtime reads before the tokenizer."""
    folder = make_genai_folder(path)
    config = json.loads((folder / "genai_config.json").read_text())
    config["model"]["decoder"].update({
        "inputs": {"input_ids": "input_ids", "past_key_names": "past_key_values.%d.key",
                   "past_value_names": "past_key_values.%d.value"},
        "outputs": {"logits": "logits"}, "num_hidden_layers": 1, "num_key_value_heads": 1,
        "head_size": 8})
    config["model"]["image_token_id"] = 4  # <|image_pad|> in the fake tokenizer
    (folder / "genai_config.json").write_text(json.dumps(config))
    return folder


def _set(name: str, text: str):
    return lambda folder: (folder / name).write_text(text)


def _truncate(name: str):
    return lambda folder: (folder / name).write_bytes((folder / name).read_bytes()[:100])


def _tokenizer_without_image_pad(folder: Path) -> None:
    data = json.loads((folder / "tokenizer.json").read_text())
    data["added_tokens"] = [t for t in data["added_tokens"] if t["content"] != "<|image_pad|>"]
    del data["model"]["vocab"]["<|image_pad|>"]
    (folder / "tokenizer.json").write_text(json.dumps(data))


BROKEN_FILES = {
    "tokenizer truncated": (_truncate("tokenizer.json"), "tokenizer.json cannot be loaded"),
    "tokenizer not JSON": (_set("tokenizer.json", "{oops"), "tokenizer.json cannot be loaded"),
    "tokenizer empty object": (_set("tokenizer.json", "{}"), "tokenizer.json cannot be loaded"),
    "tokenizer list": (_set("tokenizer.json", "[]"), "tokenizer.json cannot be loaded"),
    "tokenizer model empty": (_set("tokenizer.json", '{"model": {}}'),
                              "tokenizer.json cannot be loaded"),
    "tokenizer of another model": (_tokenizer_without_image_pad, "tokenizer.json"),
    "tokenizer_config list": (_set("tokenizer_config.json", "[]"),
                              "tokenizer_config.json is not a JSON object"),
    "template syntax": (_set("tokenizer_config.json", '{"chat_template": "{% for %}"}'),
                        "do not build a prompt"),
    "template without images": (_set("tokenizer_config.json", '{"chat_template": "hi"}'),
                                "do not build a prompt"),
    "no template": (_set("tokenizer_config.json", "{}"), "no chat template"),
    "processor list": (_set("processor_config.json", "[]"), "processor_config.json"),
    "processor attrs list": (_set("processor_config.json", json.dumps({"processor": {
        "transforms": [{"operation": {"type": "PatchImage", "attrs": []}}]}})),
        "processor_config.json"),
    "patch size zero": (_set("processor_config.json", json.dumps({"processor": {
        "transforms": [{"operation": {"type": "PatchImage", "attrs": {"patch_size": 0}}}]}})),
        "patch_size must be a positive integer"),
    "image token id differs": (lambda f: (f / "genai_config.json").write_text(
        (f / "genai_config.json").read_text().replace('"image_token_id": 4', '"image_token_id": 9')),
        "belongs to another model"),
}


@pytest.mark.parametrize(("breakage", "message"), BROKEN_FILES.values(), ids=BROKEN_FILES.keys())
def test_broken_small_files_fail_validation_and_import(tmp_path, breakage, message) -> None:
    folder = runnable_genai_folder(tmp_path / "m")
    assert validate_folder(folder).ok
    breakage(folder)
    report = validate_folder(folder)
    assert not report.ok and any(message in e for e in report.errors), report.errors
    with pytest.raises(ModelError, match="not a usable model"):
        import_model(folder)
    assert Registry().entries() == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_pipe_or_a_huge_file_is_never_read(tmp_path, monkeypatch) -> None:
    folder = runnable_genai_folder(tmp_path / "m")
    (folder / "tokenizer.json").unlink()
    os.mkfifo(folder / "tokenizer.json")  # reading it would block for ever
    (folder / "tokenizer_config.json").unlink()
    os.mkfifo(folder / "tokenizer_config.json")
    errors = validate_folder(folder).errors
    assert any("tokenizer.json is missing (or not a regular file)" in e for e in errors), errors
    monkeypatch.setattr("agent.inference.model_files.MAX_JSON", 10)
    (folder / "tokenizer_config.json").unlink()
    (folder / "tokenizer_config.json").write_text('{"chat_template": "x"}')
    assert any("more than any such file needs" in e for e in validate_folder(folder).errors)


def test_hostile_paths_in_configs_are_errors_not_crashes(tmp_path) -> None:
    folder = make_genai_folder(tmp_path / "m")
    config = json.loads((folder / "genai_config.json").read_text())
    config["model"]["vision"]["filename"] = "vision\0.onnx"
    config["model"]["embedding"]["filename"] = "x" * 5000
    (folder / "genai_config.json").write_text(json.dumps(config))
    (folder / "processor_config.json").write_text("[" * 100_000 + "]" * 100_000)
    (folder / "deskhand.json").write_text(json.dumps(
        {"files": [{"path": "a\0b", "sha256": "0" * 64}, {"path": "/etc/passwd", "sha256": "1"}]}))
    errors = validate_folder(folder).errors
    assert any("vision\0.onnx" in e for e in errors) and any("'a\0b'" in e for e in errors)
    assert any("/etc/passwd" in e for e in errors)
    assert any("processor_config.json" in e for e in errors)
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text('{"model_type": "qwen2_5_vl"}')
    (hf / "model.safetensors.index.json").write_text('{"weight_map": ["a", "b"]}')
    (hf / "x.safetensors").write_bytes(b"")
    assert any("weight_map" in e for e in validate_folder(hf).errors)


def test_onnx_backend_names_the_broken_tokenizer(tmp_path) -> None:
    from agent.inference.base import BackendError
    from agent.inference.onnx import OnnxBackend

    folder = runnable_genai_folder(tmp_path / "m")
    (folder / "tokenizer.json").write_text('{"model": {"type": "BPE", "vocab": ')  # truncated
    with pytest.raises(BackendError, match=r"tokenizer\.json cannot be loaded as a tokenizer"):
        OnnxBackend(folder, provider="cpu")
    (folder / "tokenizer.json").write_text("[]")
    (folder / "tokenizer_config.json").write_text("[]")
    with pytest.raises(BackendError, match=r"tokenizer\.json.*tokenizer_config\.json is not"):
        OnnxBackend(folder, provider="cpu")


def test_reference_backend_names_the_broken_tokenizer(tiny_checkpoint, tmp_path) -> None:
    pytest.importorskip("transformers")
    from agent.inference.base import BackendError
    from agent.inference.reference import ReferenceBackend

    folder = tmp_path / "hf"
    shutil.copytree(tiny_checkpoint, folder)
    raw = (folder / "tokenizer.json").read_bytes()
    (folder / "tokenizer.json").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(BackendError, match=r"tokenizer\.json cannot be loaded"):
        ReferenceBackend(folder)


def deskhand(args: list[str], display: str, timeout: float = 120):
    env = {**os.environ, "DISPLAY": display, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "app.commands", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


@pytest.mark.xvfb
def test_run_with_a_broken_model_is_a_message_not_a_traceback(xvfb_display, tmp_path) -> None:
    # --model DIR: validated before anything loads.
    folder = runnable_genai_folder(tmp_path / "direct")
    (folder / "tokenizer.json").write_text('{"truncated": ')
    out = deskhand(["run", "x", "--model", str(folder), "--dry-run"], xvfb_display)
    assert out.returncode == 2, out.stderr
    assert "tokenizer.json" in out.stderr and "Traceback" not in out.stderr
    # A registered model whose tokenizer broke after import: the backend names the file.
    good = runnable_genai_folder(tmp_path / "registered")
    import_model(good, name="fara")
    (good / "tokenizer.json").write_text("[]")
    out = deskhand(["run", "x", "--model", "fara", "--dry-run"], xvfb_display)
    assert out.returncode == 2, out.stderr
    assert "tokenizer.json cannot be loaded" in out.stderr and "Traceback" not in out.stderr


# --- 6. manifest hashes at import ---------------------------------------------------------

def _flip_a_byte(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[7] ^= 0xFF  # same size: only the hash tells
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("copy", [False, True], ids=["in place", "copy"])
def test_import_checks_manifest_hashes(tmp_path, copy, capsys) -> None:
    folder = make_genai_folder(tmp_path / "m")
    write_manifest(folder, source="test")
    _flip_a_byte(folder / "model.onnx.data")
    args = ["import", str(folder), "--name", "m"] + (["--copy"] if copy else [])
    assert run_cli(*args) == 2
    err = capsys.readouterr().err
    assert "changed: model.onnx.data" in err and "deskhand.json" in err
    assert Registry().entries() == []
    assert not (models_dir() / "m").exists() and not (models_dir() / ".copy-m").exists()


def test_import_checks_the_exporters_manifest_format(tmp_path) -> None:
    from models.export.manifest import write_manifest as export_manifest

    folder = make_genai_folder(tmp_path / "m")
    export_manifest(folder, {"source": "test"})
    assert import_model(folder, name="ok").name == "ok"
    _flip_a_byte(folder / "vision.onnx.data")
    with pytest.raises(ModelError, match=r"changed: vision\.onnx\.data"):
        import_model(folder, name="second")


# --- 3.-5. hostile listings, servers and redirects (a fake Hub on 127.0.0.1) --------------

class AttackHandler(HubHandler):
    """The fake Hub, plus redirects and bodies longer or shorter than listed."""

    def respond(self, body: bool) -> None:
        hub: AttackHub = self.server  # type: ignore[assignment]
        for prefix, location in hub.redirects.items():
            if self.path.split("?")[0].endswith(prefix):
                self.send_response(302)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        self.path = hub.aliases.get(self.path, self.path)
        super().respond(body)

    def send_file(self, name: str, body: bool) -> None:
        hub: AttackHub = self.server  # type: ignore[assignment]
        mode = hub.lengths.get(name)
        if mode is None or not body:
            return super().send_file(name, body)
        data = hub.files[name]
        self.send_response(200)
        if mode == "short":
            self.send_header("Content-Length", str(len(data) - 1000))
        elif mode == "long":
            self.send_header("Content-Length", str(len(data) + 1000))
        self.end_headers()
        if mode == "short":
            self.wfile.write(data[:-1000])
            return
        if mode == "long":
            self.wfile.write(data + b"\0" * 1000)
            return
        # "endless": the listed bytes, then more for as long as the client reads (8 MB cap
        # so that the old code's run ends too), with no Content-Length.
        self.close_connection = True
        sent = 0
        try:
            self.wfile.write(data)
            while sent < 8 << 20:
                self.wfile.write(b"\0" * 65536)
                sent += 65536
        except OSError:
            pass
        hub.extra_sent = sent


class AttackHub(FakeHub):
    def __init__(self, files: dict[str, bytes]) -> None:
        super().__init__(files)
        self.RequestHandlerClass = AttackHandler
        self.redirects: dict[str, str] = {}  # path suffix -> Location
        self.aliases: dict[str, str] = {}  # path -> the path it serves
        self.lengths: dict[str, str] = {}
        self.extra_sent = 0


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AttackHub]:
    server = AttackHub(repo_files(tmp_path))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")
    monkeypatch.setattr("huggingface_hub.constants.DOWNLOAD_CHUNK_SIZE", 16 * 1024)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_DOWNLOAD_TIMEOUT", 5)
    yield server
    server.shutdown()
    server.server_close()


def fetch(name: str = "fara"):
    return download_model(REPO, subfolder="cpu-int4", name=name, confirm=lambda p: True,
                          progress=False)


HOSTILE_NAMES = ["..\\..\\evil.bat", "C:/x", "C:\\x", "\\\\server\\share\\x", "/abs",
                 "a/../../x", "a/./b", "a//b", "nul\0byte", "line\nbreak", "", "a/", "x" * 300,
                 "a/" * 600 + "b", "CON", "aux.txt", "sub/LPT1.json", "trailing.", "space ",
                 "model.onnx.part", ".deskhand-download.json", "file:stream"]


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=range(len(HOSTILE_NAMES)))
def test_hostile_listing_names_are_refused_before_any_download(hub, name) -> None:
    assert unsafe_path(name) is not None
    hub.files[f"cpu-int4/{name}"] = b"payload"
    with pytest.raises(ModelError, match="lists an unsafe file"):
        fetch()
    assert hub.gets == [] and not (models_dir() / ".downloads" / "fara").exists()


def test_ordinary_names_pass() -> None:
    for name in ("model.onnx", "cpu-int4/model.onnx.data", "tokenizer.json", "a b/ç.json",
                 ".cache/x", "deskhand.json"):
        assert unsafe_path(name) is None, name


@pytest.mark.parametrize("twin", ["Tokenizer.json", "TOKENIZER.JSON"])
def test_names_equal_on_case_insensitive_disks_are_refused(hub, twin) -> None:
    hub.files[f"cpu-int4/{twin}"] = b"{}"
    with pytest.raises(ModelError, match="case-insensitive"):
        fetch()


def test_names_equal_after_unicode_normalization_are_refused(hub) -> None:
    hub.files["cpu-int4/caf\u00e9.txt"] = b"1"  # composed
    hub.files["cpu-int4/cafe\u0301.txt"] = b"2"  # decomposed: one file on APFS
    with pytest.raises(ModelError, match="case-insensitive"):
        fetch()


def _staging_with_state(name: str = "fara") -> Path:
    """The staging folder of an interrupted download (its state matches, so it is resumed)."""
    staging = models_dir() / ".downloads" / name
    staging.mkdir(parents=True)
    (staging / ".deskhand-download.json").write_text(json.dumps(
        {"repo_id": REPO, "subfolder": "cpu-int4", "commit": COMMIT, "verified": {}}))
    return staging


def test_links_in_the_staging_folder_never_lead_a_write_outside(hub, tmp_path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim"
    victim.write_bytes(b"keep me")
    staging = _staging_with_state()
    (staging / "model.onnx.data.part").symlink_to(victim)  # appending would write into it
    with pytest.raises(ModelError, match="leads outside"):
        fetch()
    assert victim.read_bytes() == b"keep me"

    shutil.rmtree(staging)
    hub.files["cpu-int4/sub/extra.txt"] = b"extra"
    staging = _staging_with_state()
    (staging / "sub").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ModelError, match="leads outside"):
        fetch()
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]


def test_a_server_sending_more_than_listed_is_cut_off(hub) -> None:
    size = len(hub.files[BIG])
    hub.lengths[BIG] = "long"
    with pytest.raises(ModelError, match=f"more than the {size} bytes listed for model.onnx.data"):
        fetch()
    part = models_dir() / ".downloads" / "fara" / "model.onnx.data.part"
    assert not part.exists() and "fara" not in Registry()


def test_an_endless_body_stops_at_the_listed_size(hub) -> None:
    hub.lengths[BIG] = "endless"
    start = time.monotonic()
    with pytest.raises(ModelError, match="more than the"):
        fetch()
    assert time.monotonic() - start < 20
    staging = models_dir() / ".downloads" / "fara"
    assert all(p.stat().st_size <= len(hub.files[f"cpu-int4/{p.name}"])
               for p in staging.iterdir() if p.is_file() and p.name in
               {Path(k).name for k in hub.files})
    assert not (staging / "model.onnx.data.part").exists()


def test_a_server_sending_less_than_listed_fails_then_resumes(hub) -> None:
    size = len(hub.files[BIG])
    hub.lengths[BIG] = "short"
    with pytest.raises(ModelError, match=rf"model\.onnx\.data.*{size - 1000} of {size} bytes"):
        fetch()
    assert "fara" not in Registry()
    part = models_dir() / ".downloads" / "fara" / "model.onnx.data.part"
    assert part.stat().st_size == size - 1000
    del hub.lengths[BIG]
    entry = fetch()
    assert entry is not None and (entry.folder / "model.onnx.data").read_bytes() == hub.files[BIG]


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Host names anything in this process asks the resolver about."""
    asked: list[str] = []
    real = socket.getaddrinfo

    def spy(host, *args, **kwargs):
        asked.append(str(host))
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", spy)
    return asked


@pytest.mark.parametrize("target", ["http://deskhand-redirect-test.example:{port}/x",
                                    "http://10.255.255.1:{port}/x",
                                    "http://127.0.0.1.nip.io:{port}/x",
                                    "http://127.0.0.1:{port}@deskhand-redirect-test.example/x",
                                    "//deskhand-redirect-test.example:{port}/x"])
def test_redirect_from_a_local_endpoint_to_another_host_is_refused(hub, lookups, target) -> None:
    port = hub.server_address[1]
    hub.redirects[f"/resolve/{COMMIT}/{BIG}"] = target.format(port=port)
    start = time.monotonic()
    with pytest.raises(ModelError, match=r"refused a redirect.*may not be sent to another host"):
        fetch()
    assert time.monotonic() - start < 10  # refused at once, not after connection timeouts
    host = target.split("//")[1].split("@")[-1].split(":")[0]
    assert host not in lookups  # not even a DNS question left the machine
    assert "fara" not in Registry()


def test_redirect_of_the_metadata_call_is_refused(hub) -> None:
    hub.redirects[f"/api/models/{REPO}"] = "http://203.0.113.9/api"
    with pytest.raises(ModelError, match="refused a redirect"):
        fetch()


def test_redirect_within_this_machine_is_followed(hub) -> None:
    port = hub.server_address[1]
    hub.redirects[f"/resolve/{COMMIT}/{BIG}"] = f"http://localhost:{port}/moved/{BIG}"
    hub.aliases[f"/moved/{BIG}"] = f"/{REPO}/resolve/{COMMIT}/{BIG}"
    entry = fetch()
    assert hub.gets[-1][0] == BIG  # served after the redirect
    assert entry is not None and (entry.folder / "model.onnx.data").read_bytes() == hub.files[BIG]


@pytest.mark.parametrize(("source", "target", "refused"), [
    ("https://huggingface.co/a", "https://cas-bridge.xethub.hf.co/b", False),  # the Hub's CDN
    ("https://huggingface.co/a", "http://cdn.example/b", True),  # drops TLS
    ("https://huggingface.co/a", "http://127.0.0.1:8080/b", True),  # at a local service
    ("https://huggingface.co/a", "https://localhost/b", True),
    ("https://huggingface.co/a", "https://[::1]/b", True),
    ("http://127.0.0.1:8080/a", "http://localhost:9000/b", False),
    ("http://127.0.0.1:8080/a", "http://[::ffff:127.0.0.1]/b", False),
    ("http://localhost:8080/a", "http://192.168.1.5/b", True),
    ("http://127.0.0.1:8080/a", "http://localhost.evil.example/b", True),
    ("http://127.0.0.1:8080/a", "file:///etc/passwd", True),
    ("https://huggingface.co/a", "http://0.0.0.0:8080/b", True),  # this machine on Linux
    ("https://huggingface.co/a", "https://[::]/b", True),
    ("https://huggingface.co/a", "https://192.168.1.1/admin", True),  # the router
    ("https://huggingface.co/a", "https://169.254.169.254/latest", True),  # cloud metadata
    ("https://huggingface.co/a", "https://[::ffff:10.0.0.1]/b", True),
    ("http://192.168.1.10/a", "http://192.168.1.11/b", False),  # a mirror in the LAN
    ("http://192.168.1.10/a", "http://127.0.0.1/b", True),
])
def test_redirect_rule(source, target, refused) -> None:
    assert (redirect_refusal(source, target) is not None) == refused


def test_repo_manifest_that_disagrees_with_the_files_is_refused(hub) -> None:
    files = {p: d for p, d in hub.files.items() if p.startswith("cpu-int4/")}
    listed = [{"path": p.removeprefix("cpu-int4/"), "size": len(d),
               "sha256": "0" * 64 if p == BIG else hashlib.sha256(d).hexdigest()}
              for p, d in files.items()]
    hub.files["cpu-int4/deskhand.json"] = json.dumps({"deskhand_manifest": 1,
                                                      "files": listed}).encode()
    with pytest.raises(ModelError, match=r"model\.onnx\.data differ from the sha256"):
        fetch()
    assert "fara" not in Registry()
