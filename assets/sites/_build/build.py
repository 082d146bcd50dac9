"""Regenerate every site's data files: `python assets/sites/_build/build.py`."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import SITES

# slug, display name, kind, one-line description
SITE_LIST = [
    ("recipes", "Hearthbook Recipes", "recipes", "Home cooking recipes with ratings and reviews"),
    ("shop", "Cartwheel Market", "shop", "Electronics, kitchen and outdoor gear"),
    ("flights", "Skylark Flights", "flights", "Fares and timetables between European cities"),
    ("hotels", "Staybright", "hotel booking", "Hotels and stays in six cities"),
    ("news", "The Lantern Post", "news", "Daily news from invented towns"),
    ("code", "Forgeline", "code hosting", "Open-source repositories, issues and releases"),
    ("archive", "Openprint", "preprint archive", "Research preprints in six subjects"),
    ("dictionary", "Wordhoard Dictionary", "dictionary", "Meanings, pronunciations and examples"),
    ("sports", "Scoreline", "sports scores", "Harbour League table, results and fixtures"),
    ("courses", "Learnwell", "online courses", "Online courses from invented universities"),
]


def main() -> None:
    for slug, *_ in SITE_LIST:
        importlib.import_module(f"{slug}_data").build()
    sites = [{"slug": s, "name": n, "kind": k, "description": d} for s, n, k, d in SITE_LIST]
    (SITES / "sites.json").write_text(json.dumps(sites, indent=1) + "\n", encoding="utf-8")
    items = "\n".join(
        f'<li class="row"><h3><a id="site-{s}" href="/{s}/">{n}</a></h3>'
        f'<div class="meta">{k} — {d}</div></li>' for s, n, k, d in SITE_LIST)
    (SITES / "index.html").write_text(LANDING.replace("{items}", items), encoding="utf-8")


LANDING = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Offline web — site list</title>
<link rel="stylesheet" href="/common/style.css"></head>
<body><header class="site"><div class="bar"><a class="brand" href="/">Offline web</a>
<form action="/search" method="get"><input type="search" id="search-q" name="q" placeholder="Search all sites">
<button id="search-go">Search</button></form></div></header>
<main><h1>Sites on this machine</h1>
<ul class="list" style="list-style:none;padding:0">
{items}
</ul></main></body></html>
"""

if __name__ == "__main__":
    main()
