// Skylark Flights: search form with a click calendar, results with filters/sort and a date strip,
// then passenger details and a review page whose "Confirm booking" is the binding action.
"use strict";
const Flights = {
  async data() { return DH.json("/flights/data.json"); },
  dayIndex(d, iso) { return Math.round((DH.parseIso(iso) - DH.parseIso(d.start)) / 86400000); },
  fare(d, f, iso, cabin) { return Math.floor(f.base * d.mult[Flights.dayIndex(d, iso)] * d.cabins[cabin || "Economy"] + 0.5); },
  operates(f, iso) { return f.days.includes((DH.parseIso(iso).getDay() + 6) % 7); },
  city(d, code) { return d.airports.find(a => a.code === code).city; },
  airline(d, code) { return d.airlines.find(a => a.code === code).name; },
  dur(m) { return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`; },
  lastDay(d) { const x = DH.parseIso(d.start); x.setDate(x.getDate() + d.mult.length - 1); return DH.iso(x); },
  async home() {
    const d = await Flights.data();
    const opts = d.airports.map(a => `<option value="${a.code}">${a.city} (${a.code})</option>`).join("");
    DH.$("#from").innerHTML = opts; DH.$("#to").innerHTML = opts;
    DH.$("#from").value = DH.q("from", "LIS"); DH.$("#to").value = DH.q("to", "CDG");
    DH.$("#cabin").innerHTML = Object.keys(d.cabins).map(c => `<option>${c}</option>`).join("");
    DH.calendar(DH.$("#depart"), {min: d.start, max: Flights.lastDay(d), start: d.start});
    DH.$("#search-form").addEventListener("submit", ev => {
      if (!DH.$("#depart").value) { ev.preventDefault(); DH.$("#form-error").hidden = false; }
    });
    DH.$("#popular").innerHTML = [["LIS", "AMS"], ["BER", "FCO"], ["CPH", "MAD"]].map(([a, b]) =>
      `<div class="card"><h3><a href="/flights/?from=${a}&to=${b}">${Flights.city(d, a)} → ${Flights.city(d, b)}</a></h3><div class="meta">Direct and one-stop options</div></div>`).join("");
  },
  async results() {
    const d = await Flights.data();
    const from = DH.q("from"), to = DH.q("to"), date = DH.q("date"), pax = Number(DH.q("pax", "1")), cabin = DH.q("cabin", "Economy");
    for (const k of ["from", "to", "date", "pax", "cabin"]) DH.$("#f-" + k).value = DH.q(k);
    DH.$("#stops").value = DH.q("stops"); DH.$("#sort").value = DH.q("sort");
    const form = DH.$("#filters");
    const route = d.flights.filter(f => f.from === from && f.to === to);
    const chosen = DH.all("airline");
    const codes = [...new Set(route.map(f => f.airline))].sort();
    DH.$("#airlines").innerHTML = codes.map(c => `<label><input type="checkbox" name="airline" value="${c}" id="airline-${c}"${chosen.includes(c) ? " checked" : ""}> ${Flights.airline(d, c)}</label>`).join("");
    form.querySelectorAll("select, input[type=checkbox]").forEach(el => el.addEventListener("change", () => form.submit()));
    DH.$("#route-title").textContent = `${Flights.city(d, from)} → ${Flights.city(d, to)} · ${date} · ${pax} passenger${pax > 1 ? "s" : ""} · ${cabin}`;
    let strip = "";
    for (let k = -3; k <= 3; k++) {
      const x = DH.parseIso(date); x.setDate(x.getDate() + k); const iso = DH.iso(x);
      if (iso < d.start || iso > Flights.lastDay(d)) continue;
      const fares = route.filter(f => Flights.operates(f, iso)).map(f => Flights.fare(d, f, iso, cabin));
      strip += `<a id="day-${iso}" class="${k === 0 ? "on" : ""}" href="${DH.esc(DH.withParams({date: iso}))}">${iso.slice(5)}<br><b>${fares.length ? "$" + Math.min(...fares) : "—"}</b></a>`;
    }
    DH.$("#datestrip").innerHTML = strip;
    let list = route.filter(f => Flights.operates(f, date));
    if (DH.q("stops") !== "") list = list.filter(f => f.stops <= Number(DH.q("stops")));
    if (chosen.length) list = list.filter(f => chosen.includes(f.airline));
    const by = {fastest: (a, b) => a.dur - b.dur, earliest: (a, b) => a.dep.localeCompare(b.dep)}[DH.q("sort")]
      || ((a, b) => Flights.fare(d, a, date, cabin) - Flights.fare(d, b, date, cabin) || a.dep.localeCompare(b.dep));
    list.sort(by);
    DH.$("#count").textContent = `${list.length} flights`;
    DH.$("#results").innerHTML = list.map((f, i) => {
      const price = Flights.fare(d, f, date, cabin);
      return `<div class="row flight" data-testid="flight-row" id="flight-${f.no}">
        <div><b>${Flights.airline(d, f.airline)}</b><div class="meta">${f.no}</div></div>
        <div class="times">${f.dep} – ${f.arr}${f.next_day ? "<sup>+1</sup>" : ""}<div class="meta">${f.from} → ${f.to}</div></div>
        <div>${Flights.dur(f.dur)}<div class="meta">${f.stops ? f.stops + " stop" + (f.stops > 1 ? "s" : "") + " (" + f.via.join(", ") + ")" : "Nonstop"}</div></div>
        <div class="fare">$${price}<div class="meta">${pax > 1 ? "$" + price * pax + " total" : "per person"}</div></div>
        <div><button type="button" class="select-flight" id="select-${f.no}" data-no="${f.no}" data-rank="${i + 1}">Select</button></div></div>`;
    }).join("") || `<p id="no-flights">No flights match on this date.</p>`;
    DH.$("#results").querySelectorAll("button.select-flight").forEach(btn => btn.addEventListener("click", async () => {
      const f = d.flights.find(x => x.no === btn.dataset.no);
      const price = Flights.fare(d, f, date, cabin);
      await DH.post("/flights/api/select", {flight: f.no, from, to, date, pax, cabin, price, total: price * pax});
      location.href = "/flights/passengers.html";
    }));
  },
  trip(st) {
    const s = st.selected;
    if (!s) return `<p id="no-trip">No flight selected yet. <a href="/flights/">Search flights</a></p>`;
    return `<table class="data" id="trip-table"><tr><th>Flight</th><td id="trip-flight">${DH.esc(s.flight)}</td></tr>
      <tr><th>Route</th><td>${DH.esc(s.from)} → ${DH.esc(s.to)}</td></tr><tr><th>Date</th><td id="trip-date">${DH.esc(s.date)}</td></tr>
      <tr><th>Passengers</th><td>${DH.esc(s.pax)} · ${DH.esc(s.cabin)}</td></tr><tr><th>Total</th><td id="trip-total">$${DH.esc(s.total)}</td></tr>
      ${st.passengers ? `<tr><th>Lead passenger</th><td id="trip-passenger">${DH.esc(st.passengers.first)} ${DH.esc(st.passengers.last)}</td></tr>` : ""}</table>`;
  },
  async passengers() {
    const st = await DH.json("/flights/api/state");
    DH.$("#trip").innerHTML = Flights.trip(st);
    DH.$("#pax-form").addEventListener("submit", async ev => {
      ev.preventDefault();
      const body = {first: DH.$("#pax-first").value.trim(), last: DH.$("#pax-last").value.trim(), email: DH.$("#pax-email").value.trim(), bags: DH.$("#pax-bag").value};
      if (!body.first || !body.last || !body.email) { const e = DH.$("#pax-error"); e.hidden = false; e.textContent = "Fill in name and email."; return; }
      const r = await DH.post("/flights/api/passengers", body);
      if (r.ok) location.href = "/flights/review.html";
    });
  },
  async review() {
    const st = await DH.json("/flights/api/state");
    DH.$("#trip").innerHTML = Flights.trip(st);
    DH.$("#confirm-booking").addEventListener("click", async () => {
      const r = await DH.post("/flights/api/book", {});
      DH.$("#done").innerHTML = r.ok ? `<p class="success" id="booking-done">Booking confirmed. Your e-ticket is on its way.</p>` : `<p class="notice">${DH.esc(r.error)}</p>`;
    });
  },
};
