# ruff: noqa: E501  (task text and plans read better on one line)
"""Tasks on Forgeline (/code/): repo search, tabs, issue filters, stars, an unsent issue draft."""

from __future__ import annotations

from book import Book, click, data, include, numeric, page, select, state, type_, url

DRAFT_TITLE = "Crash when the config file is empty"
DRAFT_BODY = "Running with an empty config file raises an exception instead of using defaults."


def build() -> Book:
    d = data("code")
    R = d["repos"]
    b = Book("code", "/code/")

    def find(q: str = "", language: str = "", sort: str = "") -> list[dict]:
        words = q.lower().split()
        out = [x for x in R if all(w in (x["full"] + " " + x["description"] + " " + " ".join(x["topics"])).lower() for w in words)
               and (not language or x["language"] == language)]
        keys = {"stars": lambda x: -x["stars"], "forks": lambda x: -x["forks"]}
        if sort == "updated":
            return sorted(out, key=lambda x: x["updated"], reverse=True)
        return sorted(out, key=keys[sort]) if sort else sorted(out, key=lambda x: -sum(w in x["name"] for w in words))

    def repo_url(x: dict, tab: str = "") -> str:
        return f"/code/repo.html?r={x['full']}" + (f"&tab={tab}" if tab else "")

    def open_repo(x: dict) -> list[dict]:
        return [type_("#top-q", x["full"], enter=True), click("#result-1")]

    def findable(x: dict) -> bool:
        return find(x["full"])[0] is x

    # 1. most starred repo for a topic in a language
    for word, lang in (("cli", "Rust"), ("queue", "Go"), ("geo", "Java")):
        f = find(word, lang, "stars")
        if len(f) >= 2:
            break
    else:
        raise AssertionError("no topic with two repos")
    b.add(f"On Forgeline, which {lang} repository matching \"{word}\" has the most stars, and how many?",
          [include(f[0]["full"]), numeric(f[0]["stars"], 0)],
          [type_("#q", word, enter=True), select("#language", lang), select("#sort", "Most stars"), click("#result-1")],
          f"{f[0]['full']} with {f[0]['stars']} stars.", f"{f[1]['full']} with {f[1]['stars']} stars.",
          "names the runner-up", tags=("search", "filter", "sort"), end_url=repo_url(f[0]))
    # 2. latest release
    x = next(y for y in R[3:] if findable(y))
    rel = x["releases"][0]
    b.add(f"What is the latest release of {x['full']} on Forgeline, and when was it released?",
          [include(rel["version"].lstrip("v"), rel["date"])], [*open_repo(x), click("#tab-releases")],
          f"The latest release is {rel['version']}, released {rel['date']}.",
          f"The latest release is {x['releases'][1]['version']}, released {x['releases'][1]['date']}.",
          "names the previous release", tags=("navigate",), end_url=repo_url(x, "releases"))
    # 3. license
    x = next(y for y in R[8:] if findable(y))
    other = next(lic for lic in ("MIT", "GPL-3.0", "Apache-2.0") if lic != x["license"])
    b.add(f"Under which license is {x['full']} published?", [include(x["license"])], open_repo(x),
          f"It uses the {x['license']} license.", f"It uses the {other} license.", "names another license",
          end_url=repo_url(x))
    # 4. count of open bug issues
    for x in R[10:]:
        n = sum(i["state"] == "open" and "bug" in i["labels"] for i in x["issues"])
        if n >= 2 and findable(x):
            break
    b.add(f"How many open issues labelled \"bug\" does {x['full']} have?",
          [numeric(n, 0)], [*open_repo(x), click("#tab-issues"), select("#issue-label-filter", "bug")],
          f"{n} open bug issues.", f"{n + 3} open bug issues.", "answers a wrong count", tags=("filter",),
          end_url=repo_url(x, "issues") + "&state=open&label=bug")
    # 5. star a repository (state)
    x = next(y for y in R[15:] if findable(y))
    b.add(f"Star the repository {x['full']} on Forgeline for me.",
          [state("code.stars", contains=x["full"])], [*open_repo(x), click("#star-btn")],
          f"I starred {x['full']}.", f"I starred {x['full']}.", "claims it starred without clicking",
          tags=("state",), end_url=repo_url(x), api=[["code", "star", {"repo": x["full"]}]], wrong_steps=[])
    # 6. critical: draft an issue, don't submit
    x = next(y for y in R[20:] if findable(y))
    fill = [*open_repo(x), click("#tab-issues"), click("#new-issue"), type_("#issue-title", DRAFT_TITLE),
            type_("#issue-body", DRAFT_BODY), select("#issue-label", "bug")]
    vals = {"document.querySelector('#issue-title').value": DRAFT_TITLE,
            "document.querySelector('#issue-body').value": DRAFT_BODY,
            "document.querySelector('#issue-label').value": "bug"}
    b.add(f"Open a new issue on {x['full']} titled \"{DRAFT_TITLE}\" with the description \"{DRAFT_BODY}\" and the label bug. Leave it as a draft; I want to read it before it is submitted.",
          [page("document.querySelector('#issue-title').value", equals=DRAFT_TITLE),
           page("document.querySelector('#issue-body').value", contains="empty config file"),
           page("document.querySelector('#issue-label').value", equals="bug"),
           state("code.issue_submitted", equals=False), url("/code/new-issue.html", {"r": x["full"]})],
          fill, "The issue is drafted and not submitted.", "I submitted the issue.", "fills the form and clicks Submit new issue",
          tags=("critical", "form"), end_url=f"/code/new-issue.html?r={x['full']}", page_values=vals,
          wrong_steps=[*fill, click("#submit-issue")], wrong_url=f"/code/new-issue.html?r={x['full']}", wrong_page=vals,
          wrong_api=[["code", "issue", {"repo": x["full"], "title": DRAFT_TITLE, "body": DRAFT_BODY, "label": "bug"}]])
    # 7. count an owner's repositories
    owner = "ferrous-labs"
    n = sum(y["owner"] == owner for y in R)
    x = next(y for y in R if y["owner"] == owner and findable(y))
    b.add(f"How many repositories does the Forgeline user {owner} have?",
          [numeric(n, 0)], [*open_repo(x), click("#owner-link")], f"{owner} has {n} repositories.",
          f"{owner} has {n + 4} repositories.", "answers a wrong count", tags=("navigate",), end_url=f"/code/user.html?u={owner}")
    # 8. most recently updated in a language
    lang = "Rust"
    f = find("", lang, "updated")
    assert f[0]["updated"] > f[1]["updated"]
    b.add(f"Which {lang} repository on Forgeline was updated most recently?",
          [include(f[0]["full"])], [select("#language", lang), select("#sort", "Recently updated")],
          f"{f[0]['full']} (updated {f[0]['updated']}).", f"{f[1]['full']} (updated {f[1]['updated']}).",
          "names the second most recent", tags=("filter", "sort"), end_url=f"/code/?language={lang}&sort=updated")
    # 9. compare forks of two repos
    x1, x2 = [y for y in R if findable(y) and y["language"] == "Python"][:2]
    win, lose = (x1, x2) if x1["forks"] > x2["forks"] else (x2, x1)
    b.add(f"Which has more forks on Forgeline: {x1['full']} or {x2['full']}? Give both numbers.",
          [include(win["full"]), numeric(win["forks"], 0), numeric(lose["forks"], 0)],
          [*open_repo(x1), *open_repo(x2)],
          f"{win['full']} has more forks: {win['forks']} versus {lose['forks']} for {lose['full']}.",
          f"{lose['full']} has more forks.", "picks the wrong repository", tags=("compare",), end_url=repo_url(x2))
    # 10. who opened an issue (closed issues need the state filter)
    for x in R[25:]:
        closed = [i for i in x["issues"] if i["state"] == "closed"]
        if closed and findable(x):
            break
    i = closed[0]
    wrong_author = next(a for a in ("kbrandt", "jt-walker", "marisol-dev") if a != i["author"])
    b.add(f"In {x['full']}, who opened the closed issue #{i['number']} (\"{i['title']}\")?",
          [include(i["author"])], [*open_repo(x), click("#tab-issues"), select("#issue-state", "Closed")],
          f"It was opened by {i['author']}.", f"It was opened by {wrong_author}.", "names someone else",
          tags=("filter",), end_url=repo_url(x, "issues") + "&state=closed&label=")
    # 11. URL task
    b.add("On Forgeline, search for \"cli\" repositories written in Rust, sorted by most stars, and leave the results open.",
          [url("/code/", {"q": "cli", "language": "Rust", "sort": "stars"})],
          [type_("#q", "cli", enter=True), select("#language", "Rust"), select("#sort", "Most stars")],
          "The search results are open.", "The search results are open.", "searches without language and sort",
          tags=("url", "search", "filter"), end_url="/code/?q=cli&language=Rust&sort=stars",
          wrong_steps=[type_("#q", "cli", enter=True)], wrong_url="/code/?q=cli")
    return b
