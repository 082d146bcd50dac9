"""The bench's llama.cpp row without llama.cpp: a fake `llama-server` (loopback, the endpoints and
timings the real one has) runs the agent run; the row's numbers come from the server's timings,
each run starts cold, and the server is stopped at the end. The real conversion and server are a
bench option (app/bench/llamacpp.py), never needed here."""

from __future__ import annotations

import argparse
import json
import stat
import sys
from pathlib import Path

import pytest

from app import bench
from app.bench.llamacpp import bytes_per_token, run_llamacpp, weight_bytes

FAKE_SERVER = '''#!{python}
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
port = int(sys.argv[sys.argv.index("--port") + 1])
log = open({log!r}, "a")
previous = []
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def _send(self, body):
        data = json.dumps(body).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(data)))
        self.end_headers(); self.wfile.write(data)
    def do_GET(self):
        self._send({{"status": "ok"}})
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{{}}")
        if self.path.startswith("/slots/"):
            previous.clear(); log.write(json.dumps({{"erase": self.path}}) + "\\n"); log.flush()
            return self._send({{}})
        msgs = [json.dumps(m, sort_keys=True) for m in body["messages"]]
        same = 0
        while same < min(len(msgs), len(previous)) and msgs[same] == previous[same]:
            same += 1
        previous[:] = msgs
        images = sum(p.get("type") == "image_url" for m in body["messages"]
                     if isinstance(m["content"], list) for p in m["content"])
        log.write(json.dumps({{"max_tokens": body["max_tokens"], "ignore_eos": body["ignore_eos"],
                              "cache_prompt": body["cache_prompt"], "images": images}}) + "\\n")
        log.flush()
        n = body["max_tokens"]
        self._send({{"choices": [{{"message": {{"content": "ok"}}}}],
                    "timings": {{"cache_n": 100 * same, "prompt_n": 100 * (len(msgs) - same),
                                "prompt_ms": 250.0, "predicted_n": n, "predicted_ms": 20.0 * n}}}})
ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
'''


@pytest.fixture
def llama_dir(tmp_path: Path) -> Path:
    root = tmp_path / "llama.cpp"
    (root / "build" / "bin").mkdir(parents=True)
    (root / "convert_hf_to_gguf.py").write_text("")
    server = root / "build" / "bin" / "llama-server"
    server.write_text(FAKE_SERVER.format(python=sys.executable, log=str(tmp_path / "log.jsonl")))
    server.chmod(server.stat().st_mode | stat.S_IEXEC)
    (root / "build" / "bin" / "llama-quantize").write_text("")
    return root


def test_the_row_runs_the_agent_run_through_the_server(llama_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "gguf"
    folder.mkdir()
    (folder / "model.gguf").write_bytes(b"x" * 1000)
    (folder / "mmproj.gguf").write_bytes(b"y" * 500)
    (folder / "tensor-bytes.json").write_text('{"layers": 700, "linear": 0, "lm_head": 200}')
    spec = {"backend": "llamacpp-q4km", "runner": "llamacpp", "model_dir": str(folder),
            "llama_cpp": str(llama_dir), "threads": 1, "steps": 5, "size": [56, 56],
            "new_tokens": 3, "seed": 0, "warmup": True, "repeat": 2, "family": "fara"}
    result = run_llamacpp(spec)
    assert len(result["runs"]) == 2 and all(len(r) == 5 for r in result["runs"])
    first, later = result["runs"][0][0], result["runs"][0][3]
    assert first["cached_tokens"] == 0  # cold: the slot was erased before step 1
    assert later["cached_tokens"] > 0 and later["generated"] == 3
    assert first["prefill_s"] == pytest.approx(0.25) and first["decode_s"] == pytest.approx(0.06)
    assert result["runs"][1][0]["cached_tokens"] == 0  # the second run starts cold too
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    asks = [e for e in log if "max_tokens" in e]
    assert all(e["ignore_eos"] and e["cache_prompt"] for e in asks)
    assert [e["images"] for e in asks[1:6]] == [1, 2, 3, 3, 3]  # after the warm-up: the window
    assert sum("erase" in e for e in log) == 2
    assert weight_bytes(folder) == 1500 and bytes_per_token(folder)["layers"] == 700


def test_the_bench_refuses_the_row_without_a_built_llama_cpp(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(["--backends", "onnx-int4,llamacpp-q4km"])
    names = bench._backend_names(args)
    families = bench._families(args)
    assert "needs --llama-cpp" in bench._check(args, names, families)
    args = parser.parse_args(["--backends", "llamacpp-q4km", "--llama-cpp", str(tmp_path)])
    assert "convert_hf_to_gguf.py is missing" in bench._check(args, names, families)
