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


DATES_START, N_DAYS = "2027-03-01", 61  # bookable window of the travel sites (March-April 2027)


def date_multipliers(r: random.Random) -> list[float]:
    """A price factor per bookable day: weekends and Easter week cost more."""
    import datetime as dt

    start = dt.date.fromisoformat(DATES_START)
    out = []
    for i in range(N_DAYS):
        day = start + dt.timedelta(days=i)
        f = 1.0 + (0.18 if day.weekday() >= 4 else 0) + (0.25 if "2027-03-22" <= day.isoformat() <= "2027-03-29" else 0)
        out.append(round(f * r.uniform(0.85, 1.15), 3))
    return out
