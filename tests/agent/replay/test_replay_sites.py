"""The harness sites' layout perturbation used to measure replay: a banner pushed in on top."""

from __future__ import annotations

import urllib.request

from agent.eval.server import SiteServer


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def test_banner_is_added_to_pages_only_while_asked() -> None:
    with SiteServer() as server:
        plain = _get(server.base_url + "/recipes/")
        assert "__perturb-banner" not in plain
        server.perturb(banner=64)
        page = _get(server.base_url + "/recipes/")
        assert 'id="__perturb-banner" style="height:64px' in page
        body = page.lower().index("<body")
        assert page.index("__perturb-banner") > body  # inside the body, before the content
        assert "__perturb-banner" not in _get(server.base_url + "/recipes/data.json")
        server.perturb()
        assert _get(server.base_url + "/recipes/") == plain
