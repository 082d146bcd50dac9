"""Recipe site data: 60 invented recipes."""

from __future__ import annotations

from common import person, rng, write_json

CUISINES = ["Italian", "Mexican", "Indian", "Japanese", "Thai", "Greek", "French", "Moroccan",
            "Korean", "American"]
MEAT = {"Chicken", "Salmon", "Beef", "Pork", "Prawn", "Shrimp", "Turkey", "Cod"}
KINDS = {
    "Breakfast": (["Pancakes", "Oats", "Frittata", "Muffins", "Hash"],
                  ["Blueberry", "Spinach", "Banana", "Sweet Potato", "Apple", "Ricotta"]),
    "Soup": (["Soup", "Stew", "Chowder", "Broth"],
             ["Chickpea", "Lentil", "Pumpkin", "Chicken", "Tomato", "Mushroom", "Corn", "Cod"]),
    "Salad": (["Salad", "Slaw", "Bowl"],
              ["Quinoa", "Kale", "Farro", "Shrimp", "Beet", "Cucumber", "Orzo"]),
    "Main": (["Curry", "Skillet", "Tacos", "Noodles", "Traybake", "Risotto", "Pie"],
             ["Chicken", "Salmon", "Tofu", "Beef", "Pork", "Cauliflower", "Halloumi", "Prawn",
              "Turkey", "Eggplant"]),
    "Dessert": (["Cake", "Tart", "Crumble", "Cookies", "Pudding", "Bars"],
                ["Pear", "Chocolate", "Almond", "Rhubarb", "Plum", "Coconut"]),
}
FLAVOURS = ["Smoky", "Lemony", "Garlic", "Spiced", "Honey", "Herbed", "Charred", "Creamy",
            "Ginger", "Chili", "Maple", "Sesame", "Saffron", "Miso", "Brown Butter"]
PANTRY = ["olive oil", "onion", "garlic cloves", "sea salt", "black pepper", "vegetable stock",
          "butter", "flour", "eggs", "lemon", "fresh parsley", "cumin", "paprika", "rice"]
UNITS = ["1 cup", "2 tbsp", "1 tsp", "200 g", "400 g", "3", "2", "1/2 cup", "1 tbsp", "150 ml"]


def build() -> list[dict]:
    r = rng("recipes")
    seen: set[str] = set()
    recipes = []
    cats = list(KINDS)
    while len(recipes) < 60:
        cat = cats[len(recipes) % len(cats)]
        dishes, mains = KINDS[cat]
        main, dish, flav = r.choice(mains), r.choice(dishes), r.choice(FLAVOURS)
        title = f"{flav} {main} {dish}"
        if title in seen:
            continue
        seen.add(title)
        n = len(recipes)
        prep, cook = r.choice([5, 10, 15, 20, 25]), r.choice([10, 15, 20, 25, 30, 40, 50, 70])
        ings = [f"{r.choice(UNITS)} {main.lower()}"] + [
            f"{r.choice(UNITS)} {p}" for p in r.sample(PANTRY, r.randint(5, 8))]
        if flav not in ("Smoky", "Charred", "Creamy", "Herbed", "Spiced"):
            ings.insert(1, f"{r.choice(UNITS)} {flav.lower()}")
        steps = [
            f"Prepare the {main.lower()}: rinse, trim and cut into even pieces.",
            "Warm the oil in a wide pan over medium heat and soften the onion for 5 minutes.",
            f"Add the {main.lower()} with the remaining ingredients and cook for {cook} minutes, "
            "stirring now and then.",
            "Taste, adjust the seasoning and rest for a few minutes.",
            f"Serve as a {cat.lower()} for {r.choice([2, 4, 6])} people.",
        ]
        recipes.append({
            "id": f"r{101 + n}", "title": title, "cuisine": r.choice(CUISINES), "category": cat,
            "vegetarian": main not in MEAT, "rating": round(r.uniform(3.2, 4.95), 1),
            "reviews": r.randint(4, 2600), "prep": prep, "cook": cook, "total": prep + cook,
            "servings": r.choice([2, 4, 6, 8]), "calories": r.randrange(180, 820, 10),
            "author": person(r), "published": f"2026-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}",
            "ingredients": ings, "steps": steps,
            "summary": f"A {flav.lower()} {cat.lower()} with {main.lower()}, "
                       f"inspired by {'home' if n % 3 else 'street'} cooking.",
        })
    write_json("recipes", "data.json", {"recipes": recipes})
    write_json("recipes", "search-index.json", [
        {"title": x["title"], "url": f"/recipes/recipe.html?id={x['id']}",
         "snippet": x["summary"], "site": "Hearthbook Recipes"} for x in recipes])
    return recipes
