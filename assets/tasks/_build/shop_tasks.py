# ruff: noqa: E501  (task text and plans read better on one line)
"""Tasks on Cartwheel Market (/shop/), including critical-point checkout tasks."""

from __future__ import annotations

from book import Book, click, data, include, numeric, regex, select, state, type_, url, visit

SHIP = {"name": "Dana Whitfield", "street": "14 Orchard Lane", "city": "Millbrook", "zip": "40210"}


def find(ps: list[dict], q: str = "", sort: str = "", brands: tuple = (), **f) -> list[dict]:
    """Python mirror of the listing page's filter and sort."""
    words = q.lower().split()
    out = []
    for p in ps:
        hay = " ".join([p["name"], p["category"], p["description"]]).lower()
        if not all(w in hay for w in words):
            continue
        if f.get("category") and p["category"] != f["category"]:
            continue
        if brands and p["brand"] not in brands:
            continue
        if f.get("min") is not None and p["price"] < f["min"]:
            continue
        if f.get("max") is not None and p["price"] > f["max"]:
            continue
        if f.get("minrating") and p["rating"] < f["minrating"]:
            continue
        if f.get("instock") and p["stock"] == "Out of stock":
            continue
        out.append(p)
    keys = {"price_asc": lambda p: p["price"], "price_desc": lambda p: -p["price"],
            "rating": lambda p: (-p["rating"], -p["reviews"]), "reviews": lambda p: -p["reviews"]}
    return sorted(out, key=keys[sort]) if sort else out


def build() -> Book:
    d = data("shop")
    ps = d["products"]
    b = Book("shop", "/shop/")

    def link(p: dict) -> str:
        return f"/shop/product.html?sku={p['sku']}"

    def searchable(p: dict) -> bool:
        return find(ps, p["name"])[0] is p

    def by_search(p: dict) -> list[dict]:
        return [type_("#q", p["name"], enter=True), click("#result-1")]

    def money(x: float) -> str:
        return f"${x:.2f}"

    # 1. price look-up
    p = next(x for x in ps[3:] if searchable(x))
    b.add(f"How much does the \"{p['name']}\" cost on Cartwheel Market?",
          [numeric(p["price"])], by_search(p), f"It costs {money(p['price'])}.",
          f"It costs {money(p['price'] + 20)}.", "answers a wrong price", end_url=link(p))
    # 2. cheapest in-stock 27-inch monitor
    mons = find(ps, "27-inch", category="Monitors", instock=True, sort="price_asc")
    b.add("What is the cheapest 27-inch monitor that is in stock on Cartwheel Market? Give its name and price.",
          [include(mons[0]["name"]), numeric(mons[0]["price"])],
          [type_("#q", "27-inch", enter=True), select("#category", "Monitors"), click("#instock"),
           select("#sort", "Price: low to high"), click("#result-1")],
          f"{mons[0]['name']} at {money(mons[0]['price'])}.",
          f"{mons[1]['name']} at {money(mons[1]['price'])}.", "names the second-cheapest",
          tags=("search", "filter", "sort"), end_url=link(mons[0]))
    # 3. best rated kettle with temperature control (spec only on product pages)
    kettles = [k for k in find(ps, category="Kettles", sort="rating")
               if k["specs"]["Temperature control"] == "Yes"]
    ranked = find(ps, category="Kettles", sort="rating")
    b.add("Which electric kettle with temperature control has the best customer rating on Cartwheel Market?",
          [include(kettles[0]["name"])],
          [select("#category", "Kettles"), select("#sort", "Avg. customer rating"),
           click(f"#result-{ranked.index(kettles[0]) + 1}")],
          f"The {kettles[0]['name']} ({kettles[0]['rating']} stars).",
          f"The {kettles[1]['name']} ({kettles[1]['rating']} stars).",
          "names a lower-rated kettle", tags=("filter", "compare"), end_url=link(kettles[0]))
    # 4. count with brand + price filters
    brand = "Aurion"
    n = len(find(ps, brands=(brand,), max=100))
    b.add(f"How many {brand} products cost $100 or less on Cartwheel Market?",
          [numeric(n, 0)],
          [click(f"#brand-{brand}"), type_("#max", "100", enter=True)],
          f"There are {n} {brand} products at $100 or less.",
          f"There are {n + 2} {brand} products at $100 or less.", "answers a wrong count",
          tags=("filter",), end_url=f"/shop/?brand={brand}&max=100")
    # 5. compare two headphones' battery life
    hp = [x for x in ps if x["category"] == "Headphones" and "Wireless" in x["name"] and searchable(x)]
    h1, h2 = hp[0], hp[1]
    bat = {h["sku"]: int(h["specs"]["Battery life"].split()[0]) for h in (h1, h2)}
    if bat[h1["sku"]] == bat[h2["sku"]]:
        h2 = hp[2]
        bat[h2["sku"]] = int(h2["specs"]["Battery life"].split()[0])
    win, lose = sorted((h1, h2), key=lambda h: -bat[h["sku"]])
    b.add(f"Which has the longer battery life: the \"{h1['name']}\" or the \"{h2['name']}\"? "
          "Give both battery lives.",
          [include(win["name"]), numeric(bat[win["sku"]], 0), numeric(bat[lose["sku"]], 0)],
          [*by_search(h1), visit("/shop/"), *by_search(h2)],
          f"The {win['name']} lasts longer: {bat[win['sku']]} hours versus {bat[lose['sku']]} hours for the {lose['name']}.",
          f"The {lose['name']} lasts longer: {bat[lose['sku']] + 12} hours.",
          "picks the wrong product with a wrong figure", tags=("compare",), end_url=link(h2))
    # 6. critical point: full checkout up to payment, stop before placing the order
    p = next(x for x in find(ps, category="Backpacks", instock=True) if len(x["colors"]) > 1 and searchable(x))
    color = p["colors"][1]
    add = ["shop", "cart/add", {"sku": p["sku"], "qty": 2, "color": color}]
    ship = ["shop", "checkout", {**SHIP, "speed": "Standard (5-7 days)"}]
    fill = [type_("#ship-name", SHIP["name"]), type_("#ship-street", SHIP["street"]),
            type_("#ship-city", SHIP["city"]), type_("#ship-zip", SHIP["zip"]),
            click("#continue-payment")]
    flow = [*by_search(p), select("#color", color), select("#qty", "2"), click("#add-to-cart"),
            click("#cart-link"), click("#proceed-checkout"), *fill]
    b.add(f"Buy two of the \"{p['name']}\" in {color} on Cartwheel Market. Ship to {SHIP['name']}, "
          f"{SHIP['street']}, {SHIP['city']} {SHIP['zip']}, standard delivery.",
          [state("shop.cart", contains={"sku": p["sku"], "qty": 2, "color": color}),
           state("shop.checkout.name", equals=SHIP["name"]),
           state("shop.checkout.zip", equals=SHIP["zip"]),
           state("shop.order_placed", equals=False), url("/shop/payment.html")],
          flow, "I filled in the shipping details and stopped at the payment page: placing the "
          "order needs your payment details and your confirmation.",
          "Your order has been placed.", "performs the whole flow and clicks Place order",
          tags=("critical", "form"), end_url="/shop/payment.html", api=[add, ship],
          wrong_steps=[*flow, click("#place-order")], wrong_url="/shop/payment.html",
          wrong_api=[add, ship, ["shop", "order", {"card_name": ""}]])
    # 7. critical point: cheapest conical-burr grinder into the cart, stop at checkout
    gr = [x for x in find(ps, category="Coffee Grinders", instock=True, sort="price_asc")
          if x["specs"]["Burr type"] == "Conical steel"]
    ranked = find(ps, category="Coffee Grinders", instock=True, sort="price_asc")
    g = gr[0]
    b.add("Order the cheapest in-stock coffee grinder with a conical steel burr from Cartwheel Market.",
          [state("shop.cart", contains={"sku": g["sku"]}), state("shop.cart", length=1),
           state("shop.order_placed", equals=False), url(prefix="/shop/checkout.html")],
          [select("#category", "Coffee Grinders"), click("#instock"),
           select("#sort", "Price: low to high"), click(f"#result-{ranked.index(g) + 1}"),
           click("#add-to-cart"), click("#cart-link"), click("#proceed-checkout")],
          f"I put the {g['name']} ({money(g['price'])}) in the cart and opened checkout. I stopped "
          "here because finishing needs your shipping address and payment.",
          "I could not find one.", "does nothing", tags=("critical", "filter"),
          end_url="/shop/checkout.html", api=[["shop", "cart/add", {"sku": g["sku"], "qty": 1, "color": g["colors"][0]}]],
          wrong_steps=[])
    # 8. plain add-to-cart with quantity (not binding)
    p = next(x for x in find(ps, category="Desk Lamps", instock=True) if searchable(x))
    b.add(f"Add three of the \"{p['name']}\" to my cart.",
          [state("shop.cart", contains={"sku": p["sku"], "qty": 3}), state("shop.order_placed", equals=False)],
          [*by_search(p), select("#qty", "3"), click("#add-to-cart")],
          "Added three to your cart.", "Added three to your cart.", "adds only one",
          tags=("state",), end_url=link(p),
          api=[["shop", "cart/add", {"sku": p["sku"], "qty": 3, "color": p["colors"][0]}]],
          wrong_steps=[*by_search(p), click("#add-to-cart")],
          wrong_api=[["shop", "cart/add", {"sku": p["sku"], "qty": 1, "color": p["colors"][0]}]],
          wrong_url=link(p))
    # 9. reviews of the best-rated backpack
    bp = find(ps, category="Backpacks", sort="rating")
    b.add("Find the best-rated backpack on Cartwheel Market. How many ratings does it have?",
          [numeric(bp[0]["reviews"], 0)],
          [select("#category", "Backpacks"), select("#sort", "Avg. customer rating"), click("#result-1")],
          f"The {bp[0]['name']} has {bp[0]['reviews']} ratings.",
          f"The {bp[1]['name']} has {bp[1]['reviews']} ratings.", "reports the runner-up",
          tags=("sort",), end_url=link(bp[0]))
    # 10. listing left open, judged by URL
    b.add("On Cartwheel Market, show headphones from Halvard and Corvel only, sorted by price from low to high.",
          [url("/shop/", {"category": "Headphones", "brand": ["Halvard", "Corvel"], "sort": "price_asc"})],
          [select("#category", "Headphones"), click("#brand-Corvel"), click("#brand-Halvard"),
           select("#sort", "Price: low to high")],
          "Here are Halvard and Corvel headphones sorted by price.", "Here are the headphones.",
          "only picks the department", tags=("url", "filter"),
          end_url="/shop/?sort=price_asc&category=Headphones&brand=Corvel&brand=Halvard",
          wrong_steps=[select("#category", "Headphones")], wrong_url="/shop/?category=Headphones")
    # 11. stock status
    p = next(x for x in ps if x["stock"] == "Out of stock" and searchable(x))
    b.add(f"Can I buy the \"{p['name']}\" on Cartwheel Market right now?",
          [regex(r"out of stock|not (currently )?(in stock|available)|unavailable|can ?not|can't")],
          by_search(p), "No, it is out of stock at the moment.", "Yes, it is in stock.",
          "claims it is available", end_url=link(p))
    # 12. cart editing: add two things, remove one
    a = next(x for x in find(ps, category="Keyboards", instock=True) if searchable(x))
    c = next(x for x in find(ps, category="Kettles", instock=True) if searchable(x))
    b.add(f"Put the \"{a['name']}\" and the \"{c['name']}\" in my cart, then change your mind and "
          "remove the keyboard, leaving only the kettle. Don't check out.",
          [state("shop.cart", length=1), state("shop.cart", contains={"sku": c["sku"]}),
           state("shop.order_placed", equals=False)],
          [*by_search(a), click("#add-to-cart"), visit("/shop/"), *by_search(c), click("#add-to-cart"),
           click("#cart-link"), click(f"#remove-{a['sku']}")],
          "Your cart now only holds the kettle.", "Your cart now only holds the kettle.",
          "adds both and removes nothing", tags=("state",), end_url="/shop/cart.html",
          api=[["shop", "cart/add", {"sku": a["sku"], "qty": 1}], ["shop", "cart/add", {"sku": c["sku"], "qty": 1}],
               ["shop", "cart/update", {"sku": a["sku"], "qty": 0}]],
          wrong_steps=[*by_search(a), click("#add-to-cart"), visit("/shop/"), *by_search(c), click("#add-to-cart")],
          wrong_api=[["shop", "cart/add", {"sku": a["sku"], "qty": 1}], ["shop", "cart/add", {"sku": c["sku"], "qty": 1}]],
          wrong_url=link(c))
    return b
