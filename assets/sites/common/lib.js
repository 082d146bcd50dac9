// Small shared helpers for the offline sites: query params, escaping, JSON calls,
// pagination and a click-only calendar widget (agents are told to click calendar cells).
"use strict";
const DH = {
  params: new URLSearchParams(location.search),
  q(name, dflt) { const v = DH.params.get(name); return v === null ? (dflt === undefined ? "" : dflt) : v; },
  all(name) { return DH.params.getAll(name); },
  esc(s) { return String(s).replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c])); },
  $(sel) { return document.querySelector(sel); },
  async json(url) { const r = await fetch(url); if (!r.ok) throw new Error(url + " " + r.status); return r.json(); },
  async post(url, body) {
    const r = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body || {})});
    return r.json();
  },
  money(x) { return "$" + Number(x).toFixed(2); },
  stars(r) { const n = Math.round(r); return "★".repeat(n) + "☆".repeat(5 - n); },
  // URL of the current page with some parameters replaced (null removes one).
  withParams(changes) {
    const p = new URLSearchParams(location.search);
    for (const [k, v] of Object.entries(changes)) { if (v === null || v === "") p.delete(k); else p.set(k, v); }
    const s = p.toString();
    return location.pathname + (s ? "?" + s : "");
  },
  // Render numbered page links; items are 1-based pages.
  pager(el, page, pages) {
    if (pages <= 1) { el.innerHTML = ""; return; }
    let h = "";
    if (page > 1) h += `<a id="page-prev" href="${DH.esc(DH.withParams({page: page - 1}))}">‹ Previous</a>`;
    for (let i = 1; i <= pages; i++) {
      h += i === page ? `<span class="current" id="page-${i}">${i}</span>` : `<a id="page-${i}" href="${DH.esc(DH.withParams({page: i}))}">${i}</a>`;
    }
    if (page < pages) h += `<a id="page-next" href="${DH.esc(DH.withParams({page: page + 1}))}">Next ›</a>`;
    el.innerHTML = h;
  },
  slice(items, page, per) { return items.slice((page - 1) * per, page * per); },
  iso(d) { return d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0") + "-" + String(d.getDate()).padStart(2, "0"); },
  parseIso(s) { const [y, m, d] = s.split("-").map(Number); return new Date(y, m - 1, d); },
  // Attach a popup month calendar to a read-only text input. Cells carry data-date="YYYY-MM-DD";
  // the month buttons have ids <input id>-prev / <input id>-next.
  calendar(input, opts) {
    const min = opts.min, max = opts.max;
    input.readOnly = true;
    const wrap = input.parentElement;
    const box = document.createElement("div");
    box.className = "cal"; box.id = input.id + "-cal"; box.hidden = true;
    wrap.appendChild(box);
    let shown = DH.parseIso(input.value || opts.start || min);
    shown = new Date(shown.getFullYear(), shown.getMonth(), 1);
    const months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
    function draw() {
      const y = shown.getFullYear(), m = shown.getMonth();
      let h = `<div class="head"><button type="button" class="secondary" id="${input.id}-prev" aria-label="Previous month">‹</button>` +
        `<span id="${input.id}-month">${months[m]} ${y}</span>` +
        `<button type="button" class="secondary" id="${input.id}-next" aria-label="Next month">›</button></div><div class="grid">`;
      for (const d of ["Mo", "Tu", "We", "Th", "Fr", "Sa", "Su"]) h += `<div class="dow">${d}</div>`;
      const first = (new Date(y, m, 1).getDay() + 6) % 7;
      for (let i = 0; i < first; i++) h += "<div></div>";
      const days = new Date(y, m + 1, 0).getDate();
      for (let d = 1; d <= days; d++) {
        const iso = DH.iso(new Date(y, m, d));
        const off = (min && iso < min) || (max && iso > max);
        h += `<button type="button" class="cal-day${iso === input.value ? " sel" : ""}" data-date="${iso}"${off ? " disabled" : ""}>${d}</button>`;
      }
      box.innerHTML = h + "</div>";
    }
    box.addEventListener("click", ev => {
      const t = ev.target.closest("button");
      if (!t) return;
      ev.stopPropagation();
      if (t.id === input.id + "-prev") { shown = new Date(shown.getFullYear(), shown.getMonth() - 1, 1); draw(); }
      else if (t.id === input.id + "-next") { shown = new Date(shown.getFullYear(), shown.getMonth() + 1, 1); draw(); }
      else if (t.dataset.date) {
        input.value = t.dataset.date; box.hidden = true;
        input.dispatchEvent(new Event("change", {bubbles: true}));
        if (opts.onPick) opts.onPick(t.dataset.date);
      }
    });
    input.addEventListener("click", ev => {
      ev.stopPropagation();
      document.querySelectorAll(".cal").forEach(c => { if (c !== box) c.hidden = true; });
      if (box.hidden) {  // open on the month of the current value (or the start month)
        const v = DH.parseIso(input.value || opts.start || min);
        shown = new Date(v.getFullYear(), v.getMonth(), 1);
        draw();
      }
      box.hidden = !box.hidden;
    });
    document.addEventListener("click", ev => { if (!box.contains(ev.target)) box.hidden = true; });
    document.addEventListener("keydown", ev => { if (ev.key === "Escape") box.hidden = true; });
  },
};
