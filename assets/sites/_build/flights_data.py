"""Flight data: invented airlines on a weekly timetable between 8 cities, fares by date."""

from __future__ import annotations

from common import date_multipliers, rng, write_json

AIRPORTS = [("LIS", "Lisbon"), ("MAD", "Madrid"), ("CDG", "Paris"), ("AMS", "Amsterdam"),
            ("BER", "Berlin"), ("FCO", "Rome"), ("VIE", "Vienna"), ("CPH", "Copenhagen")]
AIRLINES = [("NW", "Northwind Air"), ("BF", "Bluefin Airways"), ("CJ", "Cobalt Jet"), ("SM", "Sunmere")]
CABINS = {"Economy": 1.0, "Premium economy": 1.6, "Business": 3.2}


def _hm(minutes: int) -> str:
    return f"{minutes // 60 % 24:02d}:{minutes % 60:02d}"


def build() -> dict:
    r = rng("flights")
    flights = []
    for i, (a, _) in enumerate(AIRPORTS):
        for j, (b, _) in enumerate(AIRPORTS):
            if a == b:
                continue
            base_dur = 95 + 22 * abs(i - j) + r.randint(0, 25)
            for k in range(r.randint(3, 5)):
                code, _ = AIRLINES[(i + j + k) % len(AIRLINES)]
                stops = 0 if k < 2 else r.choice([0, 1, 1, 2])
                via = [x for x, _ in AIRPORTS if x not in (a, b)]
                dur = base_dur + stops * r.randint(70, 150)
                dep = r.randrange(6 * 60, 21 * 60, 5)
                days = sorted(r.sample(range(7), r.randint(4, 7)))
                flights.append({
                    "no": f"{code}{100 + i * 80 + j * 10 + k}", "airline": code, "from": a, "to": b,
                    "dep": _hm(dep), "arr": _hm(dep + dur), "next_day": dep + dur >= 24 * 60,
                    "dur": dur, "stops": stops, "via": r.sample(via, stops),
                    "base": r.randint(49, 189) + 18 * abs(i - j) + stops * -12, "days": days})
    data = {"airports": [{"code": c, "city": n} for c, n in AIRPORTS],
            "airlines": [{"code": c, "name": n} for c, n in AIRLINES], "cabins": CABINS,
            "start": "2027-03-01", "mult": date_multipliers(rng("flights-dates")), "flights": flights}
    write_json("flights", "data.json", data)
    write_json("flights", "search-index.json", [
        {"title": f"Flights from {x} to {y}", "url": f"/flights/?from={a}&to={b}",
         "snippet": f"Compare fares from {x} ({a}) to {y} ({b}) on Skylark Flights.", "site": "Skylark Flights"}
        for a, x in AIRPORTS for b, y in AIRPORTS if a != b])
    return data


def fare(data: dict, flight: dict, date: str, cabin: str = "Economy") -> int:
    """Price of one seat (whole dollars); the same formula as flights/site.js."""
    import datetime as dt

    i = (dt.date.fromisoformat(date) - dt.date.fromisoformat(data["start"])).days
    return int(flight["base"] * data["mult"][i] * data["cabins"][cabin] + 0.5)


def operates(flight: dict, date: str) -> bool:
    import datetime as dt

    return dt.date.fromisoformat(date).weekday() in flight["days"]
