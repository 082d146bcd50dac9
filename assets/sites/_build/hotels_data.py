"""Hotel data: 42 invented hotels in 6 cities with rooms and nightly prices by date."""

from __future__ import annotations

import datetime as dt

from common import date_multipliers, rng, write_json

CITIES = ["Lisbon", "Paris", "Amsterdam", "Vienna", "Rome", "Copenhagen"]
PREFIX = ["The", "Hotel", "Casa", "Maison", "Villa", "Grand", "Little"]
WORDS = ["Linden", "Harbour", "Juniper", "Old Mill", "Lantern", "Cedar", "Marble", "Clocktower",
         "Saffron", "Riverside", "Willow", "Bluebell", "Copper", "Meridian", "Larkspur", "Orchard"]
SUFFIX = ["House", "Hotel", "Suites", "Inn", "Residence", "Lodge", ""]
AMENITIES = ["Free WiFi", "Pool", "Breakfast included", "Parking", "Gym", "Pet friendly", "Spa"]
ROOMS = [("Standard Double", 1.0, 2), ("Deluxe King", 1.35, 2), ("Family Suite", 1.8, 4)]


def build() -> dict:
    r = rng("hotels")
    hotels, names = [], set()
    for ci, city in enumerate(CITIES):
        k = 0
        while k < 7:
            name = " ".join(x for x in (r.choice(PREFIX), r.choice(WORDS), r.choice(SUFFIX)) if x)
            if name in names or name.count(" ") < 1 or name.startswith("Hotel") and name.endswith("Hotel"):
                continue
            names.add(name)
            stars = r.choice([2, 3, 3, 4, 4, 5])
            hotels.append({
                "id": f"h{ci + 1}{k}", "name": name, "city": city, "stars": stars,
                "score": round(r.uniform(6.4, 9.7), 1), "reviews": r.randint(40, 3900),
                "distance": round(r.uniform(0.2, 6.5), 1), "base": 45 + stars * 28 + r.randint(0, 60),
                "amenities": sorted(r.sample(AMENITIES, r.randint(2, 5)), key=AMENITIES.index),
                "rooms": [{"type": t, "factor": f, "sleeps": s} for t, f, s in ROOMS[: r.choice([2, 3, 3])]],
                "checkin": r.choice(["14:00", "15:00", "16:00"]), "checkout": r.choice(["10:00", "11:00", "12:00"]),
                "address": f"{r.randint(2, 140)} {r.choice(WORDS)} {r.choice(['Street', 'Square', 'Lane', 'Quay'])}",
            })
            k += 1
    data = {"cities": CITIES, "amenities": AMENITIES, "start": "2027-03-01",
            "mult": date_multipliers(rng("hotels-dates")), "hotels": hotels}
    write_json("hotels", "data.json", data)
    write_json("hotels", "search-index.json", [
        {"title": h["name"], "url": f"/hotels/hotel.html?id={h['id']}",
         "snippet": f"{h['stars']}-star hotel in {h['city']} · guest score {h['score']}", "site": "Staybright"}
        for h in hotels])
    return data


def nightly(data: dict, hotel: dict, date: str, factor: float = 1.0) -> int:
    """Price of one night (whole dollars); the same formula as hotels/site.js."""
    i = (dt.date.fromisoformat(date) - dt.date.fromisoformat(data["start"])).days
    return int(hotel["base"] * factor * data["mult"][i] + 0.5)


def stay(data: dict, hotel: dict, checkin: str, checkout: str, factor: float = 1.0) -> int:
    """Total for the nights from check-in up to (not including) check-out."""
    a, b = dt.date.fromisoformat(checkin), dt.date.fromisoformat(checkout)
    return sum(nightly(data, hotel, (a + dt.timedelta(days=i)).isoformat(), factor)
               for i in range((b - a).days))
