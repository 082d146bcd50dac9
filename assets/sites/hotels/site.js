// Staybright: destination search with check-in/out calendars, filters/sort, hotel page with rooms,
// guest details, and a final page whose "Confirm booking" is the binding action.
"use strict";
const Hotels = {
  palette: ["#6b2f8a", "#2f6b8a", "#8a2f4f", "#2f8a5a", "#8a6b2f", "#4f2f8a", "#2f4f8a"],
  async data() { return DH.json("/hotels/data.json"); },
  lastDay(d) { const x = DH.parseIso(d.start); x.setDate(x.getDate() + d.mult.length - 1); return DH.iso(x); },
  nights(a, b) { return Math.round((DH.parseIso(b) - DH.parseIso(a)) / 86400000); },
  nightly(d, h, iso, factor) { const i = Math.round((DH.parseIso(iso) - DH.parseIso(d.start)) / 86400000); return Math.floor(h.base * (factor || 1) * d.mult[i] + 0.5); },
  stay(d, h, a, b, factor) {
    let s = 0; const x = DH.parseIso(a);
    for (let k = 0; k < Hotels.nights(a, b); k++) { s += Hotels.nightly(d, h, DH.iso(x), factor); x.setDate(x.getDate() + 1); }
    return s;
  },
  fits(h, guests) { return h.rooms.filter(r => r.sleeps >= guests); },
  pic(h) { return `<div class="pic" style="background:${Hotels.palette[Number(h.id.slice(2)) % 7]}">${"★".repeat(h.stars)}</div>`; },
  dates(d, onDone) {
    DH.calendar(DH.$("#checkin"), {min: d.start, max: Hotels.lastDay(d), start: d.start, onPick: iso => { if (DH.$("#checkout").value <= iso) DH.$("#checkout").value = ""; }});
    DH.calendar(DH.$("#checkout"), {min: d.start, max: Hotels.lastDay(d), start: d.start});
  },
  valid(form) {
    const a = DH.$("#checkin").value, b = DH.$("#checkout").value, e = DH.$("#form-error");
    const msg = !a || !b ? "Choose check-in and check-out dates." : b <= a ? "Check-out must be after check-in." : "";
    e.hidden = !msg; e.textContent = msg; return !msg;
  },
  async home() {
    const d = await Hotels.data();
    DH.$("#city").innerHTML = d.cities.map(c => `<option>${c}</option>`).join("");
    Hotels.dates(d);
    DH.$("#search-form").addEventListener("submit", ev => { if (!Hotels.valid()) ev.preventDefault(); });
    DH.$("#popular").innerHTML = d.cities.map(c => `<div class="card"><h3>${c}</h3><div class="meta">${d.hotels.filter(h => h.city === c).length} properties</div></div>`).join("");
  },
  async results() {
    const d = await Hotels.data();
    const city = DH.q("city"), a = DH.q("in"), b = DH.q("out"), guests = Number(DH.q("guests", "2"));
    for (const k of ["city", "in", "out", "guests"]) DH.$("#f-" + k).value = DH.q(k);
    for (const k of ["stars", "score", "maxprice", "sort"]) DH.$("#" + k).value = DH.q(k);
    const chosen = DH.all("amenity");
    DH.$("#amenities").innerHTML = d.amenities.map(x => { const id = "amenity-" + x.toLowerCase().replace(/\s+/g, "-"); return `<label><input type="checkbox" name="amenity" value="${x}" id="${id}"${chosen.includes(x) ? " checked" : ""}> ${x}</label>`; }).join("");
    const form = DH.$("#filters");
    form.querySelectorAll("select, input[type=checkbox]").forEach(el => el.addEventListener("change", () => form.submit()));
    const n = Hotels.nights(a, b);
    DH.$("#results-title").textContent = `${city}: ${a} to ${b} · ${n} night${n > 1 ? "s" : ""} · ${guests} guest${guests > 1 ? "s" : ""}`;
    let list = d.hotels.filter(h => h.city === city && Hotels.fits(h, guests).length).map(h => {
      const total = Hotels.stay(d, h, a, b, Hotels.fits(h, guests)[0].factor);
      return {h, total, per: Math.floor(total / n + 0.5)};
    });
    if (DH.q("stars")) list = list.filter(x => x.h.stars >= Number(DH.q("stars")));
    if (DH.q("score")) list = list.filter(x => x.h.score >= Number(DH.q("score")));
    if (chosen.length) list = list.filter(x => chosen.every(c => x.h.amenities.includes(c)));
    if (DH.q("maxprice")) list = list.filter(x => x.per <= Number(DH.q("maxprice")));
    const by = {price: (x, y) => x.total - y.total || x.h.name.localeCompare(y.h.name), score: (x, y) => y.h.score - x.h.score || y.h.reviews - x.h.reviews,
      distance: (x, y) => x.h.distance - y.h.distance}[DH.q("sort")];
    if (by) list.sort(by);
    DH.$("#count").textContent = `${list.length} properties found`;
    const qs = `in=${a}&out=${b}&guests=${guests}`;
    DH.$("#results").innerHTML = list.map((x, i) => `<div class="row hotel-row" data-testid="hotel-row" id="row-${x.h.id}">${Hotels.pic(x.h)}
      <div><h3><a href="/hotels/hotel.html?id=${x.h.id}&${qs}" id="result-${i + 1}" data-testid="hotel-link">${DH.esc(x.h.name)}</a></h3>
      <div class="meta">${"★".repeat(x.h.stars)} · ${x.h.distance} km from centre</div>
      <div><span class="score">${x.h.score}</span> ${x.h.reviews} reviews</div><div class="meta">${x.h.amenities.join(" · ")}</div></div>
      <div><div class="price">$${x.total}</div><div class="meta">${n} nights · $${x.per} per night</div></div></div>`).join("") || `<p id="no-results">No properties match your filters.</p>`;
  },
  async hotel() {
    const d = await Hotels.data();
    const h = d.hotels.find(x => x.id === DH.q("id"));
    const main = DH.$("#hotel");
    if (!h) { main.innerHTML = "<h1>Property not found</h1>"; return; }
    document.title = h.name + " — Staybright";
    const a = DH.q("in"), b = DH.q("out"), guests = Number(DH.q("guests", "2"));
    const ok = a && b && b > a;
    main.innerHTML = `<p class="meta"><a href="/hotels/results.html?city=${h.city}&in=${a}&out=${b}&guests=${guests}" id="back-results">${h.city}</a></p>
      <h1 id="hotel-name">${DH.esc(h.name)}</h1><p>${"★".repeat(h.stars)} <span id="hotel-stars">${h.stars}-star</span> · <span id="hotel-address">${DH.esc(h.address)}, ${h.city}</span> · ${h.distance} km from centre</p>
      <p><span class="score" id="hotel-score">${h.score}</span> from <span id="hotel-reviews">${h.reviews}</span> reviews</p>
      <p>Amenities: <span id="hotel-amenities">${h.amenities.join(", ")}</span></p>
      <p class="meta">Check-in from <span id="hotel-checkin">${h.checkin}</span> · check-out until <span id="hotel-checkout">${h.checkout}</span></p>
      <form id="dates-form" class="panel" method="get" action="/hotels/hotel.html"><input type="hidden" name="id" value="${h.id}">
      <label>Check-in <span class="datefield"><input type="text" id="checkin" name="in" value="${DH.esc(a)}" autocomplete="off"></span></label>
      <label>Check-out <span class="datefield"><input type="text" id="checkout" name="out" value="${DH.esc(b)}" autocomplete="off"></span></label>
      <label>Guests <select id="guests" name="guests">${[1, 2, 3, 4].map(g => `<option${g === guests ? " selected" : ""}>${g}</option>`).join("")}</select></label>
      <button id="check-availability">Check availability</button><p id="form-error" class="notice" hidden></p></form>
      <h2>Rooms</h2><div id="rooms"></div>`;
    Hotels.dates(d);
    DH.$("#dates-form").addEventListener("submit", ev => { if (!Hotels.valid()) ev.preventDefault(); });
    if (!ok) { DH.$("#rooms").innerHTML = `<p id="need-dates">Choose your dates to see prices.</p>`; return; }
    const n = Hotels.nights(a, b);
    DH.$("#rooms").innerHTML = `<table class="data" id="rooms-table"><tr><th>Room</th><th>Sleeps</th><th>Price for ${n} nights</th><th></th></tr>` +
      h.rooms.map((r, i) => { const t = Hotels.stay(d, h, a, b, r.factor), fit = r.sleeps >= guests;
        return `<tr id="room-${i}"><td>${r.type}</td><td>${r.sleeps}</td><td class="room-price">$${t}</td><td>${fit ? `<button type="button" class="reserve" id="reserve-${i}" data-i="${i}">Reserve</button>` : "Too small for your group"}</td></tr>`; }).join("") + "</table>";
    DH.$("#rooms").querySelectorAll("button.reserve").forEach(btn => btn.addEventListener("click", async () => {
      const r = h.rooms[Number(btn.dataset.i)];
      await DH.post("/hotels/api/select", {hotel: h.id, name: h.name, room: r.type, checkin: a, checkout: b, guests, total: Hotels.stay(d, h, a, b, r.factor)});
      location.href = "/hotels/guest.html";
    }));
  },
  summary(st) {
    const s = st.selected;
    if (!s) return `<p id="no-stay">Nothing reserved yet. <a href="/hotels/">Search stays</a></p>`;
    return `<table class="data" id="stay-table"><tr><th>Hotel</th><td id="stay-hotel">${DH.esc(s.name)}</td></tr><tr><th>Room</th><td id="stay-room">${DH.esc(s.room)}</td></tr>
      <tr><th>Dates</th><td id="stay-dates">${DH.esc(s.checkin)} to ${DH.esc(s.checkout)}</td></tr><tr><th>Guests</th><td>${DH.esc(s.guests)}</td></tr>
      <tr><th>Total</th><td id="stay-total">$${DH.esc(s.total)}</td></tr>${st.guest ? `<tr><th>Guest</th><td id="stay-guest">${DH.esc(st.guest.first)} ${DH.esc(st.guest.last)}</td></tr>` : ""}</table>`;
  },
  async guest() {
    const st = await DH.json("/hotels/api/state");
    DH.$("#stay").innerHTML = Hotels.summary(st);
    DH.$("#guest-form").addEventListener("submit", async ev => {
      ev.preventDefault();
      const body = {first: DH.$("#guest-first").value.trim(), last: DH.$("#guest-last").value.trim(), email: DH.$("#guest-email").value.trim(),
        arrival: DH.$("#guest-arrival").value, requests: DH.$("#guest-requests").value};
      if (!body.first || !body.last || !body.email) { const e = DH.$("#guest-error"); e.hidden = false; e.textContent = "Fill in name and email."; return; }
      const r = await DH.post("/hotels/api/guest", body);
      if (r.ok) location.href = "/hotels/review.html";
    });
  },
  async review() {
    const st = await DH.json("/hotels/api/state");
    DH.$("#stay").innerHTML = Hotels.summary(st);
    DH.$("#confirm-booking").addEventListener("click", async () => {
      const r = await DH.post("/hotels/api/book", {});
      DH.$("#done").innerHTML = r.ok ? `<p class="success" id="booking-done">Your stay is booked.</p>` : `<p class="notice">${DH.esc(r.error)}</p>`;
    });
  },
};
