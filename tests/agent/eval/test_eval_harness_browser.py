"""Eval browser and DevTools client on a real Xvfb display; the model judge on a fake loopback server."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from agent.eval.browser import Browser, BrowserOptions, chromium_args
from agent.eval.cdp import Cdp
from agent.eval.model_judge import JudgeError, ModelJudge
from agent.screen import Screen

PAGE = ("data:text/html,<body style='margin:0;height:3000px'><div id=box style='position:absolute;"
        "left:300px;top:200px;width:50px;height:30px;background:rgb(255,0,0)'></div>"
        "<div id=far style='position:absolute;top:2500px'>far</div><p id=hidden hidden>x</p>"
        "<div id=under style='position:absolute;left:600px;top:100px;width:100px;height:20px'>u</div>"
        "<div style='position:absolute;left:560px;top:90px;width:100px;height:40px;"
        "background:rgb(238,238,238)'>cover</div></body>")


def test_chromium_flags_keep_it_quiet(tmp_path: Path) -> None:
    args = chromium_args(tmp_path, "about:blank", BrowserOptions())
    for flag in ("--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic", "--password-store=basic", "--test-type",
                 "--no-default-browser-check", "--remote-debugging-address=127.0.0.1",
                 f"--user-data-dir={tmp_path}"):
        assert flag in args
    assert any(a.startswith("--disable-features=Translate") for a in args)
    assert "--proxy-server=http://127.0.0.1:9" in args  # nothing but loopback gets out
    online = chromium_args(tmp_path, "about:blank", BrowserOptions(offline=False))
    assert not any(a.startswith("--proxy-server") for a in online)
    assert "--kiosk" not in args
    assert "--kiosk" in chromium_args(tmp_path, "about:blank", BrowserOptions(mode="kiosk"))


def test_local_host_names_map_to_loopback_ports_only(tmp_path: Path) -> None:
    args = chromium_args(tmp_path, "about:blank", BrowserOptions(local_hosts=(("nano.test", 4711),)))
    assert "--host-resolver-rules=MAP nano.test:80 127.0.0.1:4711" in args
    assert "--proxy-bypass-list=nano.test" in args
    assert "--proxy-server=http://127.0.0.1:9" in args  # every other name still goes nowhere
    # A crafted name cannot smuggle a rule of its own (another MAP, a wildcard) or a flag.
    for name in ("nano.test, MAP * 10.0.0.1", "*", "a.test --no-sandbox", "", "x;evil.com"):
        with pytest.raises(ValueError, match="plain host name"):
            chromium_args(tmp_path, "about:blank", BrowserOptions(local_hosts=((name, 4711),)))
    with pytest.raises(ValueError, match="plain host name"):
        chromium_args(tmp_path, "about:blank", BrowserOptions(local_hosts=(("nano.test", 0),)))


@pytest.mark.xvfb
@pytest.mark.parametrize("mode", ["window", "kiosk"])
def test_viewport_maps_css_pixels_to_screen_pixels(xvfb_display: str, mode: str) -> None:
    """Where the page says an element is agrees with the pixels the agent sees, in both modes."""
    with Browser(xvfb_display, BrowserOptions(mode=mode)) as browser:
        cdp = Cdp(browser.start(PAGE)).connect()
        try:
            assert cdp.ready()
            assert cdp.wait_full_screen(1440, 900, window=mode == "window")
            view = cdp.viewport()
            rect = cdp.rect("#box")
            assert rect is not None and (rect.width, rect.height) == (50, 30)
            assert cdp.rect("#hidden") is None and cdp.rect("#missing") is None
            if mode == "kiosk":  # the viewport starts at the screen's top-left
                assert (view.chrome_top, view.screen_x, view.screen_y) == (0, 0, 0)
            else:  # tab strip and address bar above the page
                assert 50 < view.chrome_top < 200
            far = cdp.rect("#far")
            assert far is not None and far.y > view.height  # below the fold
            # The page's own view of where the box is, on screen...
            sx, sy = view.to_screen(*rect.centre)
            shot = Screen(xvfb_display).wait_settled(1, timeout=3.0, stable_frames=3)
            red = np.array(shot.image)
            ys, xs = np.nonzero((red[:, :, 0] > 200) & (red[:, :, 1] < 60) & (red[:, :, 2] < 60))
            # ...agrees with the pixels the agent sees.
            assert abs((xs.min() + xs.max()) / 2 - sx) <= 1 and abs((ys.min() + ys.max()) / 2 - sy) <= 1
            # Half covered by another element: aim at the uncovered half.
            hx, hy = cdp.hit_point("#under")
            assert 660 <= hx < 700 and 100 <= hy < 120
            assert cdp.hit_point("#far") is None  # off screen
            assert cdp.url().startswith("data:text/html")
            assert cdp.evaluate("1 + 2") == 3
        finally:
            cdp.close()
    assert not browser.alive()


class _FakeJudge(BaseHTTPRequestHandler):
    seen: list[dict] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append(body)
        text = "The answer matches the page.\nVERDICT: SUCCESS"
        data = json.dumps({"choices": [{"message": {"content": text}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_model_judge_sends_task_answer_and_last_screenshots(tmp_path: Path) -> None:
    for i in range(5):
        Image.new("RGB", (64, 40), (i * 40, 0, 0)).save(tmp_path / f"step-{i:03d}.png")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeJudge)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        judge = ModelJudge(f"http://127.0.0.1:{server.server_address[1]}/v1", "j", last_k=3)
        verdict = judge.judge_run("Find X", "X is 4", tmp_path)
    finally:
        server.shutdown()
    assert verdict["passed"] is True
    request = _FakeJudge.seen[-1]
    content = request["messages"][1]["content"]
    assert "Find X" in content[0]["text"] and "X is 4" in content[0]["text"]
    assert [c["type"] for c in content[1:]] == ["image_url"] * 3
    with pytest.raises(JudgeError, match="loopback"):
        ModelJudge("http://192.0.2.1:8080/v1")
