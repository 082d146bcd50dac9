"""Shop data: 80 invented products in 8 categories."""

from __future__ import annotations

from common import rng, write_json

BRANDS = ["Aurion", "Brightwell", "Corvel", "Duneway", "Elmstone", "Fernhill", "Gantry", "Halvard"]
MODELS = ["Quietline", "Nova", "Ridge", "Tempo", "Atlas", "Pebble", "Summit", "Drift", "Vega",
          "Lumen", "Harbor", "Pulse", "Orbit", "Cinder", "Meadow", "Zephyr"]
COLORS = ["Black", "White", "Slate Grey", "Forest Green", "Navy", "Sand"]


def _specs(cat: str, r) -> tuple[str, dict, tuple[int, int]]:
    if cat == "Headphones":
        nc = r.random() < .6
        return ("Wireless Headphones" if r.random() < .7 else "Wired Headphones",
                {"Battery life": f"{r.randrange(20, 61, 5)} hours", "Noise cancelling": "Yes" if nc else "No",
                 "Weight": f"{r.randrange(180, 330, 5)} g"}, (39, 349))
    if cat == "Keyboards":
        return ("Mechanical Keyboard" if r.random() < .6 else "Low-Profile Keyboard",
                {"Switches": r.choice(["Linear", "Tactile", "Clicky"]),
                 "Layout": r.choice(["Full size", "Tenkeyless", "75%", "60%"]),
                 "Connection": r.choice(["USB-C", "Bluetooth + USB-C", "2.4 GHz wireless"])}, (45, 229))
    if cat == "Monitors":
        size = r.choice([24, 27, 27, 32, 34])
        return (f"{size}-inch Monitor",
                {"Screen size": f"{size} in", "Resolution": r.choice(["1920x1080", "2560x1440", "3840x2160"]),
                 "Refresh rate": f"{r.choice([60, 75, 144, 165])} Hz", "Panel": r.choice(["IPS", "VA"])}, (139, 799))
    if cat == "Backpacks":
        cap = r.choice([18, 22, 25, 28, 32, 40])
        return (f"{cap}L Backpack",
                {"Capacity": f"{cap} L", "Laptop sleeve": f"up to {r.choice([13, 14, 15, 16, 17])} in",
                 "Water resistant": r.choice(["Yes", "No"])}, (35, 189))
    if cat == "Kettles":
        return ("Electric Kettle",
                {"Capacity": f"{r.choice([1.0, 1.2, 1.5, 1.7])} L", "Power": f"{r.choice([1500, 2000, 2200, 3000])} W",
                 "Temperature control": r.choice(["Yes", "No"])}, (25, 139))
    if cat == "Desk Lamps":
        return ("LED Desk Lamp",
                {"Brightness": f"{r.randrange(400, 1201, 50)} lm", "Colour temperature": r.choice(["2700-6500 K", "3000-5000 K", "4000 K"]),
                 "USB charging port": r.choice(["Yes", "No"])}, (22, 119))
    if cat == "Running Shoes":
        return ("Running Shoes",
                {"Weight": f"{r.randrange(210, 320, 5)} g", "Heel drop": f"{r.choice([4, 6, 8, 10, 12])} mm",
                 "Surface": r.choice(["Road", "Trail", "Track"])}, (59, 219))
    return ("Coffee Grinder",
            {"Burr type": r.choice(["Conical steel", "Flat steel", "Ceramic"]),
             "Grind settings": str(r.choice([15, 24, 31, 40, 48])), "Hopper": f"{r.choice([100, 200, 250, 300])} g"}, (29, 259))


CATEGORIES = ["Headphones", "Keyboards", "Monitors", "Backpacks", "Kettles", "Desk Lamps",
              "Running Shoes", "Coffee Grinders"]


def build() -> list[dict]:
    r = rng("shop")
    products, names = [], set()
    for ci, cat in enumerate(CATEGORIES):
        k = 0
        while k < 10:
            kind, specs, (lo, hi) = _specs(cat, r)
            brand, model = r.choice(BRANDS), r.choice(MODELS)
            name = f"{brand} {model} {kind}"
            if name in names:
                continue
            names.add(name)
            stock = r.choice(["In stock"] * 5 + ["Only 3 left", "Out of stock"])
            price = round(r.randint(lo, hi) - 0.01, 2)
            products.append({
                "sku": f"P{ci + 1}{k:02d}", "name": name, "brand": brand, "category": cat,
                "price": price, "rating": round(r.uniform(2.8, 4.9), 1), "reviews": r.randint(3, 4200),
                "stock": stock, "colors": sorted(r.sample(COLORS, r.randint(1, 4))), "specs": specs,
                "description": f"The {model} is a {kind.lower()} from {brand}, designed for everyday "
                               f"use with a {r.choice(['two', 'three', 'five'])}-year warranty.",
            })
            k += 1
    write_json("shop", "data.json", {"products": products, "categories": CATEGORIES, "brands": BRANDS})
    write_json("shop", "search-index.json", [
        {"title": p["name"], "url": f"/shop/product.html?sku={p['sku']}",
         "snippet": f"{p['category']} · ${p['price']:.2f} · {p['rating']} stars", "site": "Cartwheel Market"}
        for p in products])
    return products
