"""News data: 50 invented articles from templates, each with a few checkable facts."""

from __future__ import annotations

import datetime as dt

from common import person, rng, write_json

TOWNS = ["Harrowgate", "Port Ellery", "Wexmoor", "Caldbridge", "Sunnholm", "Brackenfield",
         "Lowmere", "Ostrava Bay", "Kestrel Point", "Alderney Cross"]
ORGS = ["Meridian Institute", "Northfold University", "Calder Observatory", "Tessaly Labs",
        "Brightwater Trust", "Gannet Research Station"]
FIRMS = ["Quillon Foods", "Harbourline Freight", "Vantage Looms", "Pellucid Energy", "Ostrom Rail",
         "Fennick Software"]
TEAMS = ["Harrowgate Rovers", "Port Ellery United", "Wexmoor Athletic", "Caldbridge Comets",
         "Sunnholm City", "Lowmere Wanderers"]

# section -> list of (headline, standfirst, paragraphs) with {slots}
TEMPLATES = {
    "Science": [
        ("{org} team maps hidden cave system under {town}",
         "Survey finds {n} kilometres of passages beneath the old quarter.",
         ["A team of {k} researchers from the {org} has mapped {n} kilometres of limestone passages under {town}.",
          "The survey took {m} months and used laser scanners carried on foot.",
          "\"We expected a few chambers, not a second town,\" said lead author {who}."]),
        ("Rare {bird} returns to {town} marshes after {m} years",
         "Volunteers counted {k} breeding pairs this spring.",
         ["Birdwatchers in {town} have confirmed {k} breeding pairs of the {bird}, absent from the marshes for {m} years.",
          "The {org} credits a restored reed bed of {n} hectares.", "Monitoring will continue until autumn, said {who}."]),
    ],
    "Technology": [
        ("{firm} launches {gadget} with {n}-day battery",
         "The device goes on sale in {town} first.",
         ["{firm} unveiled the {gadget}, claiming a battery life of {n} days.",
          "It will cost ${price} and ships to {k} countries from next month.", "Chief designer {who} called it \"boring on purpose\"."]),
        ("{town} switches street lights to open-source controller",
         "City says the change will cut energy use by {n} percent.",
         ["{town} has moved {k} street lights to an open-source controller written by local volunteers.",
          "Officials expect a {n} percent cut in energy use within {m} months.", "Project lead {who} said the code is public."]),
    ],
    "Business": [
        ("{firm} profits rise {n}% as exports recover",
         "Shares closed at ${price} after the results.",
         ["{firm} reported a {n}% rise in annual profit, driven by exports to {k} new markets.",
          "Its shares closed at ${price} on the day.", "Chief executive {who} warned that freight costs remain high."]),
        ("{firm} to open {k} new sites in {town}",
         "The expansion is expected to create {n} jobs.",
         ["{firm} will open {k} new sites in {town} over the next {m} months, creating {n} jobs.",
          "The company said rents in the area were \"finally sensible\".", "Regional manager {who} will lead the rollout."]),
    ],
    "World": [
        ("{town} votes to pedestrianise its harbour front",
         "{n} percent of residents backed the plan.",
         ["Residents of {town} have voted to close the harbour front to cars, with {n} percent in favour.",
          "Turnout was {k} percent; works start in {m} months.", "Mayor {who} called the result \"clear and calm\"."]),
        ("Flood barrier in {town} completed {m} months early",
         "The {n}-metre barrier protects {k} homes.",
         ["Engineers finished the {n}-metre flood barrier in {town} {m} months ahead of schedule.",
          "It protects {k} homes along the river.", "Site engineer {who} thanked a dry winter."]),
    ],
    "Sport": [
        ("{team} beat {team2} {n}-{k} in derby thriller",
         "A late goal settled a match watched by {m} thousand fans.",
         ["{team} beat {team2} {n}-{k} on Saturday in front of {m} thousand fans.",
          "The winner came in the {late}th minute.", "Coach {who} praised the substitutes."]),
        ("{who} wins {town} marathon in {h}:{mm}",
         "Record field of {k} runners finished the course.",
         ["{who} won the {town} marathon in {h}:{mm}, ahead of a record field of {k} finishers.",
          "Temperatures stayed below {n} degrees all morning.", "Organisers plan {m} extra water stations next year."]),
    ],
    "Culture": [
        ("{town} museum reopens with {n} restored tapestries",
         "The museum closed {m} years ago for repairs.",
         ["The {town} museum reopened on Friday with {n} restored tapestries on show.",
          "It had been closed for {m} years; tickets cost ${price}.", "Curator {who} said {k} volunteers helped."]),
        ("Novel by {who} tops {town} book prize shortlist",
         "The shortlist of {k} books was announced on Monday.",
         ["A debut novel by {who} leads the shortlist of {k} books for the {town} book prize.",
          "The winner, chosen by {n} judges, receives ${price}.", "The ceremony takes place in {m} weeks."]),
    ],
}
BIRDS = ["bittern", "spotted crake", "bearded reedling", "marsh harrier"]
GADGETS = ["Slate e-reader", "Beacon tracker", "Loop watch", "Quire tablet"]


def build() -> list[dict]:
    r = rng("news")
    arts = []
    secs = list(TEMPLATES)
    start = dt.date(2027, 3, 1)
    for i in range(50):
        sec = secs[i % len(secs)]
        head, stand, paras = TEMPLATES[sec][(i // len(secs)) % len(TEMPLATES[sec])]
        team, team2 = r.sample(TEAMS, 2)
        slots = {"org": r.choice(ORGS), "town": r.choice(TOWNS), "firm": r.choice(FIRMS), "team": team,
                 "team2": team2, "who": person(r), "bird": r.choice(BIRDS), "gadget": r.choice(GADGETS),
                 "n": r.randint(3, 40), "k": r.randint(2, 9) if sec == "Sport" else r.randint(6, 90),
                 "m": r.randint(2, 30), "price": r.choice([12, 18, 25, 49, 120, 5000, 20000]),
                 "late": r.randint(80, 94), "h": 2, "mm": f"{r.randint(6, 29):02d}"}
        if sec == "Sport" and "{team}" in head:
            slots["k"] = r.randint(0, 3)
            slots["n"] = slots["k"] + r.randint(1, 2)
        elif sec == "Sport":
            slots["k"] = r.randint(300, 4000)
        fill = lambda s: s.format(**slots)  # noqa: E731
        date = start - dt.timedelta(days=i * 28 // 50, hours=0)
        body = [fill(p) for p in paras]
        arts.append({
            "id": f"a{1001 + i}", "section": sec, "headline": fill(head), "standfirst": fill(stand),
            "author": person(r), "date": date.isoformat(), "time": f"{r.randint(6, 21):02d}:{r.choice(['00', '15', '30', '45'])}",
            "body": body, "views": r.randint(800, 98000), "minutes": 2 + len(" ".join(body)) // 120,
            "quote_by": slots["who"],
        })
    # two articles carry a correction notice
    arts[7]["correction"] = "An earlier version of this article gave the wrong number of street lights."
    arts[23]["correction"] = "This article was updated to correct the number of judges."
    write_json("news", "data.json", {"articles": arts, "sections": secs})
    write_json("news", "search-index.json", [
        {"title": a["headline"], "url": f"/news/article.html?id={a['id']}", "snippet": a["standfirst"],
         "site": "The Lantern Post"} for a in arts])
    return arts
