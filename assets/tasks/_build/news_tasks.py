# ruff: noqa: E501  (task text and plans read better on one line)
"""Tasks on The Lantern Post (/news/): sections, pagination, search, articles, newsletter form."""

from __future__ import annotations

import re

from book import Book, click, data, include, numeric, page, select, state, type_

NL_EMAIL = "sam.okafor@example.org"


def build() -> Book:
    d = data("news")
    arts = sorted(d["articles"], key=lambda a: a["id"])
    arts = sorted(arts, key=lambda a: a["date"] + a["time"], reverse=True)
    b = Book("news", "/news/")

    def link(a: dict) -> str:
        return f"/news/article.html?id={a['id']}"

    def sec(s: str) -> list[dict]:
        return [a for a in arts if a["section"] == s]

    def search(q: str, sort: str = "") -> list[dict]:
        words = q.lower().split()
        hits = [a for a in arts if all(w in a["headline"].lower() or w in (a["standfirst"] + " " + " ".join(a["body"])).lower() for w in words)]
        if sort == "newest":
            return hits
        return sorted(hits, key=lambda a: -sum(w in a["headline"].lower() for w in words))

    def fact(a: dict, pattern: str) -> str:
        m = re.search(pattern, " ".join(a["body"]))
        assert m, (a["id"], pattern)
        return m.group(1)

    # 1. latest in a section
    s = sec("Science")
    b.add("Open the Science section of The Lantern Post. What is the headline of the most recent Science story, and who wrote it?",
          [include(s[0]["author"]), {"kind": "answer", "match": "fuzzy", "value": s[0]["headline"], "threshold": 0.9}],
          [click("#nav-Science"), click("#result-1")],
          f"\"{s[0]['headline']}\" by {s[0]['author']}.", f"\"{s[1]['headline']}\" by {s[1]['author']}.",
          "gives the second story", tags=("navigate",), end_url=link(s[0]))
    # 2. fact inside a story found by search
    a = search("cave system")[0]
    km = fact(a, r"mapped (\d+) kilometres")
    b.add("The Lantern Post ran a story about a cave system being mapped. How many kilometres of passages were mapped?",
          [numeric(int(km), 0)], [type_("#top-q", "cave system", enter=True), click("#result-1")],
          f"{km} kilometres.", f"{int(km) + 11} kilometres.", "answers a wrong distance", tags=("search",), end_url=link(a))
    # 3. most read, second place
    top = sorted(arts, key=lambda x: -x["views"])
    b.add("Which story is number 2 on The Lantern Post's \"Most read\" list?",
          [{"kind": "answer", "match": "fuzzy", "value": top[1]["headline"], "threshold": 0.9}],
          [click("#most-read-2")], f"\"{top[1]['headline']}\".", f"\"{top[0]['headline']}\".",
          "names the first story", end_url=link(top[1]))
    # 4. pagination in a section (5 stories per page)
    biz = sec("Business")
    b.add("In The Lantern Post's Business section, what is the headline of the first story on page 2?",
          [{"kind": "answer", "match": "fuzzy", "value": biz[5]["headline"], "threshold": 0.9}],
          [click("#nav-Business"), click("#page-2")], f"\"{biz[5]['headline']}\".", f"\"{biz[0]['headline']}\".",
          "names the first story of page 1", tags=("pagination",), end_url="/news/section.html?s=Business&page=2")
    # 5. count of marathon stories
    n = len(search("marathon"))
    b.add("How many stories about marathons can you find on The Lantern Post with its search?",
          [numeric(n, 0)], [type_("#top-q", "marathon", enter=True)], f"{n} stories.", f"{n + 3} stories.",
          "answers a wrong count", tags=("search",), end_url="/news/search.html?q=marathon")
    # 6. correction notice
    a = next(x for x in arts if "correction" in x and "judges" in x["correction"])
    b.add(f"The story \"{a['headline']}\" on The Lantern Post was corrected. What did the correction fix?",
          [include(["judges", "judge"])], [type_("#top-q", a["headline"], enter=True), click("#result-1")],
          f"It corrected the number of judges: {a['correction']}", "It corrected the spelling of the author's name.",
          "describes a different correction", tags=("search",), end_url=link(a))
    # 7. newsletter form filled but not submitted (page state)
    b.add(f"Fill in The Lantern Post newsletter form for the Science and Culture topics with the email {NL_EMAIL}, weekly digest. Don't press Subscribe; I'll do that myself.",
          [page("document.querySelector('#nl-email').value", equals=NL_EMAIL),
           page("[...document.querySelectorAll('#nl-topics input:checked')].map(e => e.value).join(',')", equals="Science,Culture"),
           page("document.querySelector('#nl-frequency').value", equals="Weekly digest"),
           state("news.subscribed", equals=False)],
          [click("#nav-newsletter"), type_("#nl-email", NL_EMAIL), click("#topic-Science"), click("#topic-Culture"),
           select("#nl-frequency", "Weekly digest")],
          "The form is filled in; I did not press Subscribe.", "I subscribed you.", "fills the form and presses Subscribe",
          tags=("critical", "form"), end_url="/news/newsletter.html",
          page_values={"document.querySelector('#nl-email').value": NL_EMAIL,
                       "[...document.querySelectorAll('#nl-topics input:checked')].map(e => e.value).join(',')": "Science,Culture",
                       "document.querySelector('#nl-frequency').value": "Weekly digest"},
          wrong_steps=[click("#nav-newsletter"), type_("#nl-email", NL_EMAIL), click("#topic-Science"), click("#topic-Culture"),
                       select("#nl-frequency", "Weekly digest"), click("#subscribe")],
          wrong_api=[["news", "subscribe", {"email": NL_EMAIL, "topics": ["Science", "Culture"], "frequency": "Weekly digest"}]],
          wrong_url="/news/newsletter.html",
          wrong_page={"document.querySelector('#nl-email').value": NL_EMAIL,
                      "[...document.querySelectorAll('#nl-topics input:checked')].map(e => e.value).join(',')": "Science,Culture",
                      "document.querySelector('#nl-frequency').value": "Weekly digest"})
    # 8. derby score
    derby = next(x for x in sec("Sport") if "derby" in x["headline"])
    score = re.search(r"(\d+)-(\d+)", derby["headline"])
    minute = fact(derby, r"in the (\d+)th minute")
    b.add(f"In the Lantern Post report \"{derby['headline']}\", in which minute was the winning goal scored?",
          [numeric(int(minute), 0)], [type_("#top-q", derby["headline"], enter=True), click("#result-1")],
          f"In the {minute}th minute.", f"In the {int(minute) - 30}th minute.", "answers a wrong minute",
          tags=("search",), end_url=link(derby))
    assert score
    # 9. author of the lead story + date
    lead = arts[0]
    b.add("Who wrote The Lantern Post's lead story on the front page, and on what date was it published?",
          [include(lead["author"], [lead["date"], "March 1", "1 March", "Mar 1"])], [click("#lead-link")],
          f"{lead['author']}, published {lead['date']}.", f"{arts[1]['author']}, published 2027-02-14.",
          "names another author and date", end_url=link(lead))
    # 10. compare two numbers across two stories
    tech = [x for x in sec("Technology") if "battery" in x["headline"]]
    t1, t2 = tech[0], tech[1]
    d1, d2 = (int(re.search(r"(\d+)-day", t["headline"]).group(1)) for t in (t1, t2))
    if d1 == d2:
        t2 = tech[2]
        d2 = int(re.search(r"(\d+)-day", t2["headline"]).group(1))
    win = t1 if d1 > d2 else t2
    gad = re.search(r"launches (.+) with", win["headline"]).group(1)
    firm = win["headline"].split(" launches")[0]
    price = fact(win, r"cost \$(\d+)")
    b.add(f"Two recent Lantern Post technology stories are \"{t1['headline']}\" and \"{t2['headline']}\". Which company's device claims the longer battery life, and what does it cost?",
          [include(firm), numeric(int(price), 0)],
          [type_("#top-q", "battery", enter=True), click(f"#row-{win['id']} a")],
          f"{firm}'s {gad} lasts longer; it costs ${price}.", "They last equally long.",
          "claims a tie", tags=("search", "compare"), end_url=link(win))
    # 11. search restricted to a section and sorted oldest first
    hits = [x for x in search("harbour", "newest") if x["section"] == "World"][::-1]
    b.add("Search The Lantern Post for \"harbour\", show only World stories, oldest first. What is the first result's headline?",
          [{"kind": "answer", "match": "fuzzy", "value": hits[0]["headline"], "threshold": 0.9}],
          [type_("#top-q", "harbour", enter=True), select("#section", "World"), select("#sort", "Oldest first")],
          f"\"{hits[0]['headline']}\".", f"\"{hits[-1]['headline']}\".", "gives the newest instead",
          tags=("search", "filter", "sort"), end_url="/news/search.html?q=harbour&section=World&sort=oldest")
    return b
