"""Sports data: an invented 12-club league, 18 rounds played and 4 to come, with goal scorers."""

from __future__ import annotations

import datetime as dt

from common import FIRST, LAST, rng, write_json

CLUBS = ["Harrowgate Rovers", "Port Ellery United", "Wexmoor Athletic", "Caldbridge Comets",
         "Sunnholm City", "Lowmere Wanderers", "Brackenfield Town", "Kestrel Point FC",
         "Ostrava Bay Albion", "Alderney Cross", "Millbrook Rangers", "Fenwick Harriers"]
PLAYED, ROUNDS = 18, 22


def _rounds(n: int) -> list[list[tuple[int, int]]]:
    """Double round robin by the circle method."""
    teams = list(range(n))
    first = []
    for r in range(n - 1):
        pairs = [(teams[i], teams[n - 1 - i]) for i in range(n // 2)]
        first.append([(a, b) if r % 2 else (b, a) for a, b in pairs])
        teams = [teams[0], teams[-1], *teams[1:-1]]
    return first + [[(b, a) for a, b in rnd] for rnd in first]


def build() -> dict:
    r = rng("sports")
    clubs = [{"id": f"t{i + 1}", "name": c, "short": "".join(w[0] for w in c.split())[:3].upper(),
              "ground": f"{r.choice(['North', 'Mill', 'Quay', 'Castle'])} {r.choice(['Park', 'Road', 'Lane', 'Meadow'])}",
              "founded": r.randint(1878, 1962)} for i, c in enumerate(CLUBS)]
    players, used = [], set()
    for c in clubs:
        for k in range(6):
            while (name := f"{r.choice(FIRST)} {r.choice(LAST)}") in used:
                pass
            used.add(name)
            players.append({"id": f"{c['id']}p{k + 1}", "name": name, "team": c["id"],
                            "position": ["Forward", "Forward", "Midfielder", "Midfielder", "Defender", "Defender"][k],
                            "weight": [6, 4, 3, 2, 1, 1][k]})
    start = dt.date(2026, 8, 8)
    matches = []
    for ri, rnd in enumerate(_rounds(len(clubs))[:ROUNDS]):
        date = (start + dt.timedelta(days=12 * ri)).isoformat()
        for h, a in rnd:
            m = {"round": ri + 1, "date": date, "home": clubs[h]["id"], "away": clubs[a]["id"]}
            if ri < PLAYED:
                hg, ag = r.choice([0, 1, 1, 2, 2, 3, 4]), r.choice([0, 0, 1, 1, 2, 3])
                goals = []
                for team, n in ((m["home"], hg), (m["away"], ag)):
                    squad = [p for p in players if p["team"] == team]
                    for _ in range(n):
                        p = r.choices(squad, weights=[x["weight"] for x in squad])[0]
                        goals.append({"player": p["id"], "team": team, "minute": r.randint(1, 90)})
                goals.sort(key=lambda g: g["minute"])
                m.update(hg=hg, ag=ag, goals=goals, attendance=r.randint(4000, 31000))
            matches.append(m)
    for p in players:
        del p["weight"]
    data = {"clubs": clubs, "players": players, "matches": matches, "played": PLAYED, "rounds": ROUNDS}
    write_json("sports", "data.json", data)
    write_json("sports", "search-index.json", [
        {"title": c["name"], "url": f"/sports/team.html?t={c['id']}", "snippet": f"Club page: results, fixtures and squad. Founded {c['founded']}.",
         "site": "Scoreline"} for c in clubs])
    return data


def table(data: dict) -> list[dict]:
    """League table: points, then goal difference, goals for, name (same order as sports/site.js)."""
    rows = {c["id"]: {"id": c["id"], "name": c["name"], "p": 0, "w": 0, "d": 0, "l": 0, "gf": 0, "ga": 0}
            for c in data["clubs"]}
    for m in data["matches"]:
        if "hg" not in m:
            continue
        for team, gf, ga in ((m["home"], m["hg"], m["ag"]), (m["away"], m["ag"], m["hg"])):
            row = rows[team]
            row["p"] += 1
            row["gf"] += gf
            row["ga"] += ga
            row["w" if gf > ga else "d" if gf == ga else "l"] += 1
    out = list(rows.values())
    for row in out:
        row["gd"], row["pts"] = row["gf"] - row["ga"], 3 * row["w"] + row["d"]
    return sorted(out, key=lambda x: (-x["pts"], -x["gd"], -x["gf"], x["name"]))
