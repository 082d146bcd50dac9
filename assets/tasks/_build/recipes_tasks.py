# ruff: noqa: E501  (task text and plans read better on one line)
"""Tasks on Hearthbook Recipes (/recipes/)."""

from __future__ import annotations

from book import Book, click, data, include, numeric, select, state, type_, url, visit

SORTS = {"rating": lambda r: (-r["rating"], -r["reviews"]), "reviews": lambda r: -r["reviews"],
         "time": lambda r: (r["total"], r["title"]), "newest": lambda r: r["published"]}


def find(rs: list[dict], q: str = "", sort: str = "", **f) -> list[dict]:
    """Python mirror of the listing page's filter and sort."""
    words = q.lower().split()
    out = []
    for r in rs:
        hay = " ".join([r["title"], r["cuisine"], r["category"], *r["ingredients"]]).lower()
        if not all(w in hay for w in words):
            continue
        if f.get("cuisine") and r["cuisine"] != f["cuisine"]:
            continue
        if f.get("category") and r["category"] != f["category"]:
            continue
        if f.get("veg") and not r["vegetarian"]:
            continue
        if f.get("maxtime") and r["total"] > f["maxtime"]:
            continue
        if f.get("minrating") and r["rating"] < f["minrating"]:
            continue
        out.append(r)
    if sort == "newest":
        return sorted(out, key=SORTS[sort], reverse=True)
    return sorted(out, key=SORTS[sort]) if sort else out


def by_search(title: str) -> list[dict]:
    return [type_("#q", title, enter=True), click("#result-1")]


def build() -> Book:
    rs = data("recipes")["recipes"]
    b = Book("recipes", "/recipes/")
    R = {r["id"]: r for r in rs}

    def link(r: dict) -> str:
        return f"/recipes/recipe.html?id={r['id']}"

    def searchable(r: dict) -> bool:
        return find(rs, r["title"])[0] is r

    # 1. one-step look-up by name
    r = next(x for x in rs[5:] if searchable(x))
    b.add(f"Find the recipe \"{r['title']}\" on Hearthbook and tell me its total time in minutes.",
          [numeric(r["total"])], by_search(r["title"]),
          f"{r['title']} takes {r['total']} minutes in total.",
          f"{r['title']} takes {r['total'] + 15} minutes in total.", "answers a wrong total time",
          end_url=link(r))
    # 2. calories look-up
    r = next(x for x in rs[20:] if searchable(x))
    b.add(f"How many calories per serving does the \"{r['title']}\" recipe have?",
          [numeric(r["calories"])], by_search(r["title"]),
          f"It has {r['calories']} kcal per serving.", f"It has {r['calories'] + 120} kcal per serving.",
          "answers a wrong calorie count", end_url=link(r))
    # 3. best-rated in a category with a diet filter
    for cat in ("Soup", "Salad", "Breakfast", "Main"):
        top = find(rs, category=cat, veg=True, sort="rating")
        if len(top) > 1 and top[0]["rating"] > top[1]["rating"]:
            break
    b.add(f"Which vegetarian {cat.lower()} recipe has the highest rating on Hearthbook? Give its name and rating.",
          [include(top[0]["title"]), numeric(top[0]["rating"])],
          [select("#category", cat), click("#veg"), select("#sort", "Best rated"), click("#result-1")],
          f"The best-rated vegetarian {cat.lower()} is {top[0]['title']}, rated {top[0]['rating']}.",
          f"The best-rated vegetarian {cat.lower()} is {top[1]['title']}, rated {top[1]['rating']}.",
          "names the runner-up", tags=("filter", "sort"), end_url=link(top[0]))
    # 4. most reviewed within a cuisine
    cu = max(sorted({x["cuisine"] for x in rs}), key=lambda c: len(find(rs, cuisine=c)))
    top = find(rs, cuisine=cu, sort="reviews")
    b.add(f"Which {cu} recipe has the most reviews, and how many reviews does it have?",
          [include(top[0]["title"]), numeric(top[0]["reviews"])],
          [select("#cuisine", cu), select("#sort", "Most reviewed"), click("#result-1")],
          f"{top[0]['title']} with {top[0]['reviews']} reviews.",
          f"{top[1]['title']} with {top[1]['reviews']} reviews.", "names the second most reviewed",
          tags=("filter", "sort"), end_url=link(top[0]))
    # 5. any-of answer: quick dessert
    quick = find(rs, category="Dessert", maxtime=30)
    assert quick, "no quick dessert"
    other = next(x for x in rs if x["category"] == "Dessert" and x["total"] > 30)
    b.add("Find me any dessert recipe on Hearthbook that is ready in 30 minutes or less. Just give its name.",
          [include([x["title"] for x in quick])],
          [select("#category", "Dessert"), select("#maxtime", "30 min or less"), click("#result-1")],
          f"You could make {quick[0]['title']}.", f"You could make {other['title']}.",
          "names a dessert that takes longer than 30 minutes", tags=("filter",), end_url=link(quick[0]))
    # 6. result count for an ingredient search
    word = "lentil" if find(rs, "lentil") else "chickpea"
    n = len(find(rs, word))
    b.add(f"Search Hearthbook for \"{word}\". How many recipes are found?",
          [numeric(n, 0)], [type_("#q", word, enter=True)],
          f"{n} recipes are found.", f"{n + 3} recipes are found.", "answers a wrong count",
          tags=("search",), end_url=f"/recipes/?q={word}")
    # 7. author of the quickest recipe in a course
    for cat in ("Breakfast", "Salad", "Soup", "Dessert", "Main"):
        q = find(rs, category=cat, sort="time")
        if q[0]["total"] < q[1]["total"]:
            break
    b.add(f"Who wrote the quickest {cat.lower()} recipe on Hearthbook (shortest total time)?",
          [include(q[0]["author"])],
          [select("#category", cat), select("#sort", "Quickest"), click("#result-1")],
          f"{q[0]['title']} by {q[0]['author']}.", f"{q[1]['title']} by {q[1]['author']}.",
          "names the author of the second-quickest recipe", tags=("sort",), end_url=link(q[0]))
    # 8. save to recipe box (state, not binding)
    r = next(x for x in rs[30:] if searchable(x))
    b.add(f"Save the recipe \"{r['title']}\" to my Hearthbook recipe box.",
          [state("recipes.saved", contains=r["id"])],
          [*by_search(r["title"]), click("#save-recipe")],
          f"I saved {r['title']} to your recipe box.", "I saved it to your recipe box.",
          "does nothing and claims success", tags=("state",), end_url=link(r),
          api=[["recipes", "save", {"id": r["id"]}]], wrong_steps=[])
    # 9. first ingredient
    r = next(x for x in rs[40:] if searchable(x))
    ing = r["ingredients"][0]
    wrong_ing = next(i for i in r["ingredients"][2:] if i.split(" ", 2)[-1] not in ing)
    b.add(f"What is the first ingredient listed for \"{r['title']}\", with its quantity?",
          [include(ing)], by_search(r["title"]), f"The first ingredient is {ing}.",
          f"The first ingredient is {wrong_ing}.", "names a later ingredient", end_url=link(r))
    # 10. comparison across detail pages: fewest calories among highly rated in a cuisine
    for cu in sorted({x["cuisine"] for x in rs}):
        cand = find(rs, cuisine=cu, minrating=4)
        cal = sorted(cand, key=lambda x: x["calories"])
        if len(cal) >= 3 and cal[0]["calories"] < cal[1]["calories"]:
            break
    best = cal[0]
    idx = find(rs, cuisine=cu, minrating=4).index(best) + 1
    b.add(f"Among {cu} recipes rated 4 stars and up, which one has the fewest calories per serving? "
          "Give the name and the calories.",
          [include(best["title"]), numeric(best["calories"])],
          [select("#cuisine", cu), select("#minrating", "4 stars and up"), click(f"#result-{idx}")],
          f"{best['title']} has the fewest, {best['calories']} kcal.",
          f"{cal[1]['title']} has the fewest, {cal[1]['calories']} kcal.",
          "names the second-lowest", tags=("filter", "compare"), end_url=link(best))
    # 11. leave a filtered, sorted listing open (URL judged)
    b.add("Show me all Mexican main-course recipes sorted by best rating, and leave that list open.",
          [url("/recipes/", {"cuisine": "Mexican", "category": "Main", "sort": "rating"})],
          [select("#cuisine", "Mexican"), select("#category", "Main"), select("#sort", "Best rated")],
          "The list of Mexican main courses sorted by rating is open.",
          "The list of Mexican main courses sorted by rating is open.",
          "stays on the unfiltered home page", tags=("url", "filter"),
          end_url="/recipes/?q=&sort=rating&cuisine=Mexican&category=Main&maxtime=&minrating=",
          wrong_steps=[])
    # 12. pagination
    newest = find(rs, sort="newest")
    b.add("Sort all Hearthbook recipes by newest. Which recipe is the first one on page 2 of the results?",
          [include(newest[12]["title"])],
          [select("#sort", "Newest"), click("#page-2")],
          f"The first recipe on page 2 is {newest[12]['title']}.",
          f"The first recipe on page 2 is {newest[0]['title']}.", "names the first recipe of page 1",
          tags=("sort", "pagination"), end_url="/recipes/?sort=newest&page=2")
    # 13. prep time vs cook time, multi-fact
    r = R[next(x["id"] for x in rs[50:] if searchable(x))]
    b.add(f"For \"{r['title']}\", how many minutes of preparation and how many minutes of cooking are needed?",
          [include(f"{r['prep']}", f"{r['cook']}"),
           {"kind": "answer", "match": "regex", "pattern": rf"\b{r['prep']}\b.*\b{r['cook']}\b|\b{r['cook']}\b.*\b{r['prep']}\b"}],
          by_search(r["title"]),
          f"Preparation takes {r['prep']} minutes and cooking {r['cook']} minutes.",
          f"Preparation takes {r['prep'] + 7} minutes and cooking {r['cook'] + 9} minutes.",
          "answers wrong times", end_url=link(r))
    # 14. start from the global search page
    r = next(x for x in rs[10:] if searchable(x))
    b.add(f"Use web search to find the Hearthbook recipe \"{r['title']}\". How many servings does it make?",
          [numeric(r["servings"], 0)],
          [visit(f"/search?q={r['title']}"), click("#hit-1")],
          f"It makes {r['servings']} servings.", f"It makes {r['servings'] + 1} servings.",
          "answers a wrong serving count", start="/search", end_url=link(r), tags=("search",))
    return b
