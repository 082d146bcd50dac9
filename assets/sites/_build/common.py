"""Helpers shared by the site data generators (deterministic: fixed seeds, no clock)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

SITES = Path(__file__).resolve().parent.parent
TODAY = "2027-03-01"  # the frozen "today" of every site

FIRST = ["Ada", "Bruno", "Celia", "Darius", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonah",
         "Kira", "Lionel", "Maya", "Nils", "Odette", "Pavel", "Quinn", "Rosa", "Soren", "Talia",
         "Umar", "Vera", "Wendell", "Ximena", "Yusuf", "Zora"]
LAST = ["Ashgrove", "Bellamy", "Castellan", "Drummond", "Eskildsen", "Fairweather", "Galloway",
        "Hartigan", "Ivers", "Jablonski", "Kettering", "Lindqvist", "Marchetti", "Nakamura",
        "Okonkwo", "Pellegrino", "Quist", "Rinaldi", "Sorensen", "Thornbury", "Underhill",
        "Vasquez", "Whitlock", "Yamada", "Zeller"]


def rng(name: str) -> random.Random:
    """A generator seeded by a fixed name, so every build is identical."""
    return random.Random(f"deskhand-sites-{name}")


def person(r: random.Random) -> str:
    return f"{r.choice(FIRST)} {r.choice(LAST)}"


def write_json(site: str, name: str, obj: Any) -> None:
    path = SITES / site / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=None, separators=(",", ":"), ensure_ascii=False) + "\n",
                    encoding="utf-8")


def read_json(site: str, name: str = "data.json") -> Any:
    return json.loads((SITES / site / name).read_text(encoding="utf-8"))
