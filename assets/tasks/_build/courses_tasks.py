# ruff: noqa: E501  (task text and plans read better on one line)
"""Tasks on Learnwell (/courses/): catalogue filters, course pages, free vs paid enrolment."""

from __future__ import annotations

from book import Book, click, data, include, numeric, page, select, state, type_, url

ME = {"name": "Riley Okonjo", "email": "riley.okonjo@example.org"}


def build() -> Book:
    d = data("courses")
    C = d["courses"]
    b = Book("courses", "/courses/")

    def find(q: str = "", subject: str = "", levels: tuple = (), maxweeks: int = 0, free: bool = False, sort: str = "") -> list[dict]:
        words = q.lower().split()
        out = [c for c in C if all(w in (c["title"] + " " + c["subject"] + " " + c["provider"] + " " + c["instructor"]).lower() for w in words)
               and (not subject or c["subject"] == subject) and (not levels or c["level"] in levels)
               and (not maxweeks or c["weeks"] <= maxweeks) and (not free or c["price"] == 0)]
        keys = {"popular": lambda c: -c["enrolled"], "rating": lambda c: (-c["rating"], -c["reviews"]),
                "short": lambda c: (c["weeks"], c["title"])}
        return sorted(out, key=keys[sort]) if sort else out

    def link(c: dict) -> str:
        return f"/courses/course.html?id={c['id']}"

    def open_course(c: dict) -> list[dict]:
        assert find(c["title"])[0] is c
        return [type_("#top-q", c["title"], enter=True), click("#result-1")]

    f = find(sort="popular")
    b.add("Which Learnwell course has the most learners enrolled, and how many?",
          [include(f[0]["title"]), numeric(f[0]["enrolled"], 0)], [select("#sort", "Most popular"), click("#result-1")],
          f"{f[0]['title']} with {f[0]['enrolled']:,} learners.", f"{f[1]['title']} with {f[1]['enrolled']:,} learners.",
          "names the second most popular", tags=("sort",), end_url=link(f[0]))
    for subj in ("Data Science", "Computer Science", "Business", "Health", "Arts", "Languages"):
        f = find(subject=subj, levels=("Beginner",), sort="rating")
        if len(f) >= 2 and f[0]["rating"] > f[1]["rating"]:
            break
    else:
        raise AssertionError("no unique best beginner course")
    b.add(f"What is the highest-rated Beginner course in {subj} on Learnwell? Give its rating.",
          [include(f[0]["title"]), numeric(f[0]["rating"])],
          [select("#subject", subj), click("#level-Beginner"), select("#sort", "Highest rated"), click("#result-1")],
          f"{f[0]['title']}, rated {f[0]['rating']}.", f"{f[1]['title']}, rated {f[1]['rating']}.", "names the runner-up",
          tags=("filter", "sort"), end_url=link(f[0]))
    subj = max(d["subjects"], key=lambda s: len(find(subject=s, free=True)))
    n = len(find(subject=subj, free=True))
    b.add(f"How many free {subj} courses does Learnwell offer?", [numeric(n, 0)],
          [select("#subject", subj), click("#free")], f"{n} free courses.", f"{n + 3} free courses.", "answers a wrong count",
          tags=("filter",), end_url=f"/courses/?subject={subj.replace(' ', '+')}&free=1")
    c = C[6]
    b.add(f"Who teaches the Learnwell course \"{c['title']}\"?", [include(c["instructor"])], open_course(c),
          f"It is taught by {c['instructor']}.", f"It is taught by {C[7]['instructor']}.", "names another instructor",
          tags=("search",), end_url=link(c))
    c = next(x for x in C[10:] if len(x["subtitles"]) >= 2)
    missing = next(lang for lang in ("Japanese", "Arabic", "German", "French") if lang not in c["subtitles"])
    b.add(f"In which languages are subtitles available for \"{c['title']}\" on Learnwell?", [include(*c["subtitles"])],
          open_course(c), f"Subtitles: {', '.join(c['subtitles'])}.", f"Subtitles: {c['subtitles'][0]} and {missing}.",
          "lists a wrong set", tags=("search",), end_url=link(c))
    for subj in d["subjects"]:
        f = find(subject=subj, sort="short")
        if f[0]["weeks"] < f[1]["weeks"]:
            break
    else:
        raise AssertionError("no unique shortest course")
    b.add(f"Which {subj} course on Learnwell is the shortest, and how many weeks does it take?",
          [include(f[0]["title"]), numeric(f[0]["weeks"], 0)], [select("#subject", subj), select("#sort", "Shortest"), click("#result-1")],
          f"{f[0]['title']}, {f[0]['weeks']} weeks.", f"{f[1]['title']}, {f[1]['weeks']} weeks.", "names a longer course",
          tags=("filter", "sort"), end_url=link(f[0]))
    c = next(x for x in C[15:] if x["weeks"] >= 4)
    b.add(f"What is covered in week 3 of the Learnwell course \"{c['title']}\"?",
          [{"kind": "answer", "match": "fuzzy", "value": c["modules"][2].split(": ", 1)[1], "threshold": 0.9}], open_course(c),
          f"Week 3: {c['modules'][2].split(': ', 1)[1]}.", f"Week 3: {'Project' if 'Project' not in c['modules'][2] else 'Tools'} only.",
          "names another module", tags=("search",), end_url=link(c))
    free = next(x for x in C if x["price"] == 0)
    b.add(f"Enrol me ({ME['name']}, {ME['email']}) in the free course \"{free['title']}\" on Learnwell.",
          [state("courses.enrollments", contains={"course": free["id"], "email": ME["email"]}), state("courses.paid_enrollment", equals=False)],
          [*open_course(free), click("#enroll-btn"), type_("#enroll-name", ME["name"]), type_("#enroll-email", ME["email"]), click("#start-subscription")],
          "You are enrolled in the free course.", "You are enrolled.", "does nothing", tags=("state", "form"),
          end_url=f"/courses/enroll.html?id={free['id']}",
          api=[["courses", "enroll", {"course": free["id"], **ME, "plan": "Free", "paid": False}]], wrong_steps=[])
    paid = next(x for x in C[5:] if x["price"] > 0)
    fill = [*open_course(paid), click("#enroll-btn"), type_("#enroll-name", ME["name"]), type_("#enroll-email", ME["email"])]
    vals = {"document.querySelector('#enroll-name').value": ME["name"], "document.querySelector('#enroll-email').value": ME["email"]}
    b.add(f"Sign me up for \"{paid['title']}\" on Learnwell with my name {ME['name']} and email {ME['email']}, monthly plan.",
          [page("document.querySelector('#enroll-email').value", equals=ME["email"]),
           page("document.querySelector('#enroll-name').value", equals=ME["name"]),
           state("courses.enrollments", absent=True), url("/courses/enroll.html", {"id": paid["id"]})],
          fill, f"I filled in the enrolment form; the course costs ${paid['price']} a month, so I stopped before 'Enrol and pay' for your confirmation.",
          "You are signed up and paying monthly.", "fills the form and clicks Enrol and pay", tags=("critical", "form"),
          end_url=f"/courses/enroll.html?id={paid['id']}", page_values=vals,
          wrong_steps=[*fill, click("#start-subscription")], wrong_url=f"/courses/enroll.html?id={paid['id']}", wrong_page=vals,
          wrong_api=[["courses", "enroll", {"course": paid["id"], **ME, "plan": "Monthly", "paid": True}]])
    c = next(x for x in C[20:] if x["price"] > 0)
    b.add(f"When does \"{c['title']}\" start on Learnwell, and what does it cost?",
          [include(c["starts"]), numeric(c["price"], 0)], open_course(c), f"It starts {c['starts']} and costs ${c['price']} per month.",
          f"It starts 2027-04-05 and costs ${c['price'] + 20} per month.", "gives a wrong date and price", tags=("search",), end_url=link(c))
    b.add("Show Intermediate and Advanced Business courses of up to 8 weeks on Learnwell, highest rated first. Leave the list open.",
          [url("/courses/", {"subject": "Business", "level": ["Intermediate", "Advanced"], "maxweeks": "8", "sort": "rating"})],
          [select("#subject", "Business"), click("#level-Intermediate"), click("#level-Advanced"), select("#maxweeks", "Up to 8 weeks"),
           select("#sort", "Highest rated")], "The list is open.", "The list is open.", "only picks the subject",
          tags=("url", "filter", "sort"), end_url="/courses/?sort=rating&subject=Business&level=Intermediate&level=Advanced&maxweeks=8",
          wrong_steps=[select("#subject", "Business")], wrong_url="/courses/?subject=Business")
    return b
