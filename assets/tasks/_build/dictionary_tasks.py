# ruff: noqa: E501  (task text and plans read better on one line)
"""Tasks on Wordhoard Dictionary (/dictionary/): look-ups, suggestions, senses, browsing."""

from __future__ import annotations

from book import Book, click, data, include, numeric, type_


def build() -> Book:
    d = data("dictionary")
    E: dict[str, list[dict]] = {}
    for e in d["entries"]:
        E.setdefault(e["word"], []).append(e)
    b = Book("dictionary", "/dictionary/")

    def look(w: str) -> list[dict]:
        return [type_("#dict-q", w, enter=True)]

    def link(w: str) -> str:
        return f"/dictionary/entry.html?w={w}"

    g = E["gregarious"][0]
    b.add("How is \"gregarious\" pronounced in American English according to Wordhoard? Give the IPA.",
          [include(g["us"].strip("/"))], look("gregarious"), f"US: {g['us']}", f"US: {g['uk']}",
          "gives the UK pronunciation", end_url=link("gregarious"))
    r = E["resilient"][0]
    b.add("Give Wordhoard's example sentence for the second meaning of \"resilient\".",
          [{"kind": "answer", "match": "fuzzy", "value": r["senses"][1]["example"], "threshold": 0.9}], look("resilient"),
          f"\"{r['senses'][1]['example']}\"", f"\"{r['senses'][0]['example']}\"", "quotes the first sense's example",
          end_url=link("resilient"))
    t = E["tenacious"][0]
    b.add("Find a synonym of \"tenacious\" in the Wordhoard dictionary.",
          [include(t["synonyms"])], look("tenacious"), f"A synonym is {t['synonyms'][0]}.", "A synonym is fragile.",
          "gives a non-synonym", end_url=link("tenacious"))
    m = E["meander"][0]
    b.add("What is today's word of the day on Wordhoard, and where does the word come from?",
          [include("meander", ["Maiandros", "Greek"])], [click("#wotd-word")],
          f"The word of the day is meander; it comes from {m['origin']}.", "The word of the day is ramble; it comes from Dutch.",
          "names another word", end_url=link("meander"))
    h = next(e for e in E["harbour"] if e["pos"] == "verb")
    b.add("How many meanings does Wordhoard list for \"harbour\" used as a verb?",
          [numeric(len(h["senses"]), 0)], look("harbour"), f"{len(h['senses'])} meanings.", f"{len(h['senses']) + 2} meanings.",
          "answers a wrong count", end_url=link("harbour"))
    k = E["keen"][0]
    b.add("What CEFR level does Wordhoard give the word \"keen\"?",
          [include(k["level"])], look("keen"), f"It is level {k['level']}.", "It is level C2.", "gives a wrong level",
          end_url=link("keen"))
    b.add("According to Wordhoard, how many feet is one fathom (the unit of depth)?",
          [numeric(6, 0)], look("fathom"), "One fathom is six feet (6 ft).", "One fathom is 3 feet.", "answers 3",
          end_url=link("fathom"))
    vw = sorted(w for w in E if w.startswith("v"))
    b.add("Browse Wordhoard's words under the letter V. Which words are listed?",
          [include(*vw)], [click("#browse-link"), click("#letter-v")], f"The V words are {' and '.join(vw)}.",
          f"The only V word is {vw[0]}.", "leaves one out", tags=("navigate",), end_url="/dictionary/browse.html?letter=v")
    b.add("Which of these two words has a meaning \"not well known\" in Wordhoard: \"lucid\" or \"obscure\"?",
          [include("obscure"), {"kind": "answer", "match": "must_exclude", "values": ["lucid is the", "it is lucid", "answer is lucid"]}],
          [*look("lucid"), *look("obscure")], "It is obscure: \"not well known\" is its first meaning.", "The answer is lucid.",
          "picks lucid", tags=("compare",), end_url=link("obscure"))
    u = E["unravel"][0]
    b.add("Start typing \"unra\" into Wordhoard's search box and pick the suggested word. What is its second meaning?",
          [{"kind": "answer", "match": "fuzzy", "value": u["senses"][1]["def"], "threshold": 0.85}],
          [type_("#dict-q", "unra"), click("#suggest-1")], f"The second meaning of unravel is: {u['senses'][1]['def']}.",
          f"The second meaning is: {u['senses'][0]['def']}.", "gives the first meaning", tags=("autocomplete",),
          end_url=link("unravel"))
    th = E["thrifty"][0]
    b.add("What does \"thrifty\" mean according to Wordhoard, and what is one synonym it lists?",
          [{"kind": "answer", "match": "must_include", "values": [["careful about spending", "not wasteful"], th["synonyms"]]}],
          look("thrifty"), f"Thrifty means {th['senses'][0]['def']}; a synonym is {th['synonyms'][0]}.",
          "Thrifty means generous with money; a synonym is lavish.", "gives the opposite meaning", end_url=link("thrifty"))
    return b
