# ruff: noqa: E501  (task text and plans read better on one line)
"""Tasks on Openprint (/archive/): listings, field search, ordering, abstract pages."""

from __future__ import annotations

import re
from collections import Counter

from book import Book, click, data, include, numeric, select, type_, url


def build() -> Book:
    d = data("archive")
    P = sorted(d["papers"], key=lambda p: (p["submitted"], p["id"]), reverse=True)
    b = Book("archive", "/archive/")

    def link(p: dict) -> str:
        return f"/archive/abs.html?id={p['id']}"

    def search(q: str, field: str = "all", order: str = "") -> list[dict]:
        words = q.lower().split()

        def hay(p: dict) -> str:
            parts = {"title": p["title"], "author": " ".join(p["authors"]), "abstract": p["abstract"]}
            return (" ".join(parts.values()) if field == "all" else parts[field]).lower()
        hits = [p for p in P if all(w in hay(p) for w in words)]
        if order == "oldest":
            return hits[::-1]
        if order == "newest":
            return hits
        return sorted(hits, key=lambda p: -sum(w in p["title"].lower() for w in words))

    def by_title(p: dict) -> list[dict]:
        assert search(p["title"])[0] is p
        return [type_("#top-q", p["title"], enter=True), click("#result-1")]

    def listing(cat: str) -> list[dict]:
        return [p for p in P if p["category"] == cat or cat in p["cross"]]

    # 1. newest in a subject
    cl = listing("cs.CL")
    b.add("What is the newest paper in Openprint's Computation and Language (cs.CL) listing? Give its title and first author.",
          [include(cl[0]["title"], cl[0]["authors"][0])], [click("#cat-cs-CL"), click("#result-1")],
          f"\"{cl[0]['title']}\" by {cl[0]['authors'][0]}.", f"\"{cl[1]['title']}\" by {cl[1]['authors'][0]}.",
          "names the second newest", tags=("navigate",), end_url=link(cl[0]))
    # 2. page count
    p = P[5]
    pages = int(re.match(r"(\d+) pages", p["comments"]).group(1))
    b.add(f"How many pages does the Openprint paper \"{p['title']}\" have?", [numeric(pages, 0)], by_title(p),
          f"{pages} pages.", f"{pages + 6} pages.", "answers a wrong page count", tags=("search",), end_url=link(p))
    # 3. version history
    p = next(x for x in P[10:] if len(x["versions"]) >= 2)
    v2 = p["versions"][1]["date"]
    b.add(f"When was version 2 of \"{p['title']}\" submitted to Openprint?", [include(v2)], by_title(p),
          f"Version 2 was submitted on {v2}.", f"Version 2 was submitted on {p['versions'][0]['date']}.",
          "gives the v1 date", tags=("search",), end_url=link(p))
    # 4. count papers by an author (author field search)
    counts = Counter(a for x in P for a in x["authors"])
    author, n = next((a, c) for a, c in counts.most_common() if c >= 2 and len(search(a, "author")) == c)
    b.add(f"How many papers by {author} are on Openprint? Search by author.",
          [numeric(n, 0)], [select("#top-field", "Author"), type_("#top-q", author, enter=True)],
          f"{n} papers.", f"{n + 2} papers.", "answers a wrong count", tags=("search", "form"),
          end_url=f"/archive/search.html?q={author.replace(' ', '+')}&field=author")
    # 5. earliest paper by that author
    hits = search(author, "author", "oldest")
    if hits[0]["submitted"] == hits[1]["submitted"]:
        raise AssertionError("tie on submission date")
    b.add(f"Which paper by {author} was submitted to Openprint first (the oldest)?",
          [include(hits[0]["title"])],
          [select("#top-field", "Author"), type_("#top-q", author, enter=True), select("#order", "Submission date (oldest first)")],
          f"\"{hits[0]['title']}\", submitted {hits[0]['submitted']}.", f"\"{hits[-1]['title']}\".",
          "names the newest one", tags=("search", "sort"), end_url=f"/archive/search.html?q={author.replace(' ', '+')}&field=author&order=oldest")
    # 6. cross-listed subjects
    p = next(x for x in P if x["cross"])
    cross = p["cross"][0]
    b.add(f"Besides its primary subject, under which other subject is \"{p['title']}\" listed on Openprint?",
          [include([cross, d["categories"][cross]])], by_title(p),
          f"It is cross-listed in {d['categories'][cross]} ({cross}).", f"It is only listed in {p['category']}.",
          "says there is no cross-list", tags=("search",), end_url=link(p))
    # 7. abstract fact
    p = P[17]
    pts = re.search(r"baseline by ([\d.]+) points", p["abstract"]).group(1)
    b.add(f"According to its abstract, by how many points does \"{p['title']}\" improve the strongest baseline?",
          [numeric(float(pts))], by_title(p), f"By {pts} points.", f"By {float(pts) + 3:.1f} points.",
          "answers a wrong improvement", tags=("search",), end_url=link(p))
    # 8. pagination in a listing
    cat = max(d["categories"], key=lambda c: len(listing(c)))
    lst = listing(cat)
    assert len(lst) > 10
    b.add(f"In the Openprint listing for {d['categories'][cat]} ({cat}), which paper is the first one on page 2?",
          [include(lst[10]["title"])], [click(f"#cat-{cat.replace('.', '-')}"), click("#page-2")],
          f"\"{lst[10]['title']}\".", f"\"{lst[0]['title']}\".", "names the first paper of page 1",
          tags=("pagination",), end_url=f"/archive/list.html?cat={cat}&page=2")
    # 9. title search, oldest first
    word = "Conformal"
    hits = search(word, "title", "oldest")
    assert len(hits) >= 2
    b.add(f"Search Openprint titles for \"{word}\" and sort by submission date, oldest first. What is the identifier of the first result?",
          [include(hits[0]["id"])],
          [select("#top-field", "Title"), type_("#top-q", word, enter=True), select("#order", "Submission date (oldest first)")],
          f"op:{hits[0]['id']}", f"op:{hits[-1]['id']}", "gives the newest paper's id", tags=("search", "sort"),
          end_url=f"/archive/search.html?q={word}&field=title&order=oldest")
    # 10. compare compute savings of two papers
    p1, p2 = P[2], P[30]
    s1, s2 = (int(re.search(r"using (\d+)% less compute", x["abstract"]).group(1)) for x in (p1, p2))
    if s1 == s2:
        p2 = P[31]
        s2 = int(re.search(r"using (\d+)% less compute", p2["abstract"]).group(1))
    win = p1 if s1 > s2 else p2
    b.add(f"Which of these Openprint papers reports the larger compute saving: \"{p1['title']}\" or \"{p2['title']}\"? Give both percentages.",
          [include(win["title"]), numeric(s1, 0), numeric(s2, 0)], [*by_title(p1), *by_title(p2)],
          f"\"{win['title']}\": {s1}% vs {s2}% less compute.", f"\"{(p2 if win is p1 else p1)['title']}\" saves more.",
          "picks the other paper", tags=("compare", "search"), end_url=link(p2))
    # 11. URL task: abstract-field search ordered newest
    b.add("On Openprint, search abstracts for \"one GPU\", newest first, and leave the results open.",
          [url("/archive/search.html", {"q": "one GPU", "field": "abstract", "order": "newest"})],
          [select("#top-field", "Abstract"), type_("#top-q", "one GPU", enter=True), select("#order", "Submission date (newest first)")],
          "The results are open.", "The results are open.", "searches all fields by relevance",
          tags=("url", "search", "sort"), end_url="/archive/search.html?q=one+GPU&field=abstract&order=newest",
          wrong_steps=[type_("#top-q", "one GPU", enter=True)], wrong_url="/archive/search.html?q=one+GPU&field=all")
    return b
