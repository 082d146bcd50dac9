# ruff: noqa: E501  (task text and plans read better on one line)
"""Tasks on Scoreline (/sports/): table, results by round, match pages, fixtures, scorers."""

from __future__ import annotations

import sys
from collections import Counter

from book import SITES, Book, click, data, include, numeric, select, url

sys.path.insert(0, str(SITES / "_build"))
from sports_data import table


def build() -> Book:
    d = data("sports")
    club = {c["id"]: c for c in d["clubs"]}
    player = {p["id"]: p for p in d["players"]}
    T = table(d)
    played = [m for m in d["matches"] if "hg" in m]
    goals = Counter(g["player"] for m in played for g in m["goals"])
    b = Book("sports", "/sports/")

    def match_url(m: dict) -> str:
        return f"/sports/match.html?r={m['round']}&h={m['home']}"

    def round_steps(r: int) -> list[dict]:
        return [click("#nav-results"), select("#round", f"Round {r}")]

    assert T[0]["pts"] > T[1]["pts"]
    b.add("Which club leads the Harbour League table on Scoreline, and how many points does it have?",
          [include(T[0]["name"]), numeric(T[0]["pts"], 0)], [], f"{T[0]['name']} lead with {T[0]['pts']} points.",
          f"{T[1]['name']} lead with {T[1]['pts']} points.", "names the second-placed club")
    m = next(x for x in played if x["round"] == 7 and x["hg"] != x["ag"])
    b.add(f"What was the score when {club[m['home']]['name']} played {club[m['away']]['name']} at home in round 7?",
          [{"kind": "answer", "match": "regex", "pattern": rf"\b{m['hg']}\s*(-|–|to)\s*{m['ag']}\b"}],
          round_steps(7), f"{club[m['home']]['name']} {m['hg']}–{m['ag']} {club[m['away']]['name']}.",
          f"{club[m['home']]['name']} {m['ag']}–{m['hg']} {club[m['away']]['name']}.", "swaps the score",
          tags=("select",), end_url="/sports/results.html?round=7")
    top = sorted(goals.items(), key=lambda kv: (-kv[1], player[kv[0]]["name"]))
    assert top[0][1] > top[1][1]
    b.add("Who is the Harbour League's top scorer on Scoreline, and how many goals has he scored?",
          [include(player[top[0][0]]["name"]), numeric(top[0][1], 0)], [click("#nav-scorers")],
          f"{player[top[0][0]]['name']} with {top[0][1]} goals.", f"{player[top[1][0]]['name']} with {top[1][1]} goals.",
          "names the second scorer", end_url="/sports/scorers.html")
    row = T[5]
    b.add(f"How many matches has {row['name']} won this season?", [numeric(row["w"], 0)],
          [click(f"#row-{row['id']} a")], f"{row['name']} have won {row['w']} matches.", f"They have won {row['w'] + 3}.",
          "answers a wrong count", end_url=f"/sports/team.html?t={row['id']}")
    c = d["clubs"][2]
    nxt = next(x for x in d["matches"] if "hg" not in x and c["id"] in (x["home"], x["away"]))
    opp = club[nxt["away"] if nxt["home"] == c["id"] else nxt["home"]]["name"]
    later = next(x for x in d["matches"] if "hg" not in x and c["id"] in (x["home"], x["away"]) and x["round"] > nxt["round"])
    opp2 = club[later["away"] if later["home"] == c["id"] else later["home"]]["name"]
    b.add(f"Who do {c['name']} play next, and on what date?", [include(opp, nxt["date"])],
          [click(f"#row-{c['id']} a")], f"They play {opp} on {nxt['date']}.", f"They play {opp2} on {later['date']}.",
          "names a later fixture", end_url=f"/sports/team.html?t={c['id']}")
    m = next(x for x in played if x["round"] == 12 and len(x["goals"]) >= 2 and x["goals"][0]["minute"] < x["goals"][1]["minute"])
    g0, g1 = m["goals"][0], m["goals"][1]
    b.add(f"In round 12, {club[m['home']]['name']} hosted {club[m['away']]['name']}. Who scored the first goal, and in which minute?",
          [include(player[g0["player"]]["name"]), numeric(g0["minute"], 0)], [*round_steps(12), click(f"#score-12-{m['home']}")],
          f"{player[g0['player']]['name']} in the {g0['minute']}th minute.", f"{player[g1['player']]['name']} in the {g1['minute'] + 1 if g1['minute'] + 1 != g0['minute'] else g1['minute'] + 2}th minute.",
          "names another scorer", tags=("select",), end_url=match_url(m))
    r5 = T[4]
    b.add("What is the goal difference of the club in 5th place in the Harbour League?",
          [numeric(r5["gd"], 0)], [], f"{r5['name']} are 5th with a goal difference of {r5['gd']:+d}.",
          f"{r5['name']} are 5th with a goal difference of {r5['gd'] + 4:+d}.", "answers a wrong difference")
    best = sorted(T, key=lambda x: (x["ga"], T.index(x)))
    assert best[0]["ga"] < best[1]["ga"]
    b.add("Which club has conceded the fewest goals this season, and how many?",
          [include(best[0]["name"]), numeric(best[0]["ga"], 0)], [select("#table-sort", "Fewest goals conceded")],
          f"{best[0]['name']}, {best[0]['ga']} goals conceded.", f"{best[1]['name']}, {best[1]['ga']} goals conceded.",
          "names the runner-up", tags=("sort",), end_url="/sports/?sort=ga")
    m = max((x for x in played if x["round"] == 15), key=lambda x: x["attendance"])
    b.add(f"How many people attended {club[m['home']]['name']} against {club[m['away']]['name']} in round 15?",
          [numeric(m["attendance"], 0)], [*round_steps(15), click(f"#score-15-{m['home']}")],
          f"{m['attendance']:,} spectators.", f"{m['attendance'] - 1500:,} spectators.", "answers a wrong attendance",
          tags=("select",), end_url=match_url(m))
    hw = sum(x["hg"] > x["ag"] for x in played if x["round"] == 3)
    b.add("How many matches in round 3 of the Harbour League ended in a home win?",
          [numeric(hw, 0)], round_steps(3), f"{hw} home wins.", f"{hw + 2} home wins.", "answers a wrong count",
          tags=("select", "compare"), end_url="/sports/results.html?round=3")
    b.add("Open the Harbour League results for round 9 on Scoreline and leave them on screen.",
          [url("/sports/results.html", {"round": "9"})], round_steps(9), "Round 9 results are open.",
          "Round 9 results are open.", "stays on the latest round", tags=("url", "select"),
          end_url="/sports/results.html?round=9", wrong_steps=[click("#nav-results")], wrong_url="/sports/results.html")
    return b
