// Openprint: subject listings (newest first, 10 per page), field search with ordering, abstract pages.
"use strict";
const Archive = {
  PER_PAGE: 10,
  async data() {
    const d = await DH.json("/archive/data.json");
    d.papers.sort((a, b) => b.submitted.localeCompare(a.submitted) || b.id.localeCompare(a.id));
    return d;
  },
  row(p, i) {
    return `<div class="row" data-testid="paper-row" id="row-${p.id}"><div class="paper-id"><a href="/archive/abs.html?id=${p.id}" id="result-${i + 1}" data-testid="paper-link">op:${p.id}</a> [${p.category}]</div>
      <h3>${DH.esc(p.title)}</h3><div>${p.authors.map(DH.esc).join(", ")}</div><div class="meta">Submitted ${p.submitted} · ${DH.esc(p.comments)}</div></div>`;
  },
  async home() {
    const d = await Archive.data();
    DH.$("#cats").innerHTML = Object.entries(d.categories).map(([k, v]) => `<div class="row"><h3><a href="/archive/list.html?cat=${k}" id="cat-${k.replace(".", "-")}">${v}</a> <span class="meta">(${k})</span></h3>
      <div class="meta">${d.papers.filter(p => p.category === k).length} papers</div></div>`).join("");
  },
  async list() {
    const d = await Archive.data();
    const cat = DH.q("cat");
    DH.$("#list-title").textContent = `${d.categories[cat] || cat} (${cat})`;
    const list = d.papers.filter(p => p.category === cat || p.cross.includes(cat));
    const pages = Math.max(1, Math.ceil(list.length / Archive.PER_PAGE));
    const page = Math.min(pages, Math.max(1, Number(DH.q("page", "1")) || 1));
    DH.$("#count").textContent = `${list.length} entries, newest first (including cross-lists)`;
    DH.$("#papers").innerHTML = DH.slice(list, page, Archive.PER_PAGE).map((p, i) => Archive.row(p, (page - 1) * Archive.PER_PAGE + i)).join("");
    DH.pager(DH.$("#pager"), page, pages);
  },
  match(p, field, words) {
    const parts = {title: p.title, author: p.authors.join(" "), abstract: p.abstract};
    const hay = (field === "all" ? Object.values(parts).join(" ") : parts[field] || "").toLowerCase();
    return words.every(w => hay.includes(w));
  },
  async search() {
    const d = await Archive.data();
    const field = DH.q("field", "all") || "all";
    for (const k of ["q", "order"]) DH.$("#" + k).value = DH.q(k);
    DH.$("#field").value = field; DH.$("#top-field").value = field;
    DH.$("#order").addEventListener("change", () => DH.$("#search-form").submit());
    const words = DH.q("q").toLowerCase().split(/\s+/).filter(Boolean);
    let hits = words.length ? d.papers.filter(p => Archive.match(p, field, words)) : [];
    if (DH.q("order") === "oldest") hits.reverse();
    else if (DH.q("order") !== "newest") hits.sort((a, b) => words.filter(w => b.title.toLowerCase().includes(w)).length - words.filter(w => a.title.toLowerCase().includes(w)).length);
    DH.$("#count").textContent = words.length ? `Showing ${hits.length} results` : "Enter search terms.";
    DH.$("#papers").innerHTML = hits.map(Archive.row).join("") || (words.length ? `<p id="no-results">No results.</p>` : "");
  },
  async abs() {
    const d = await Archive.data();
    const p = d.papers.find(x => x.id === DH.q("id"));
    const el = DH.$("#paper");
    if (!p) { el.innerHTML = "<h1>Paper not found</h1>"; return; }
    document.title = p.title + " — Openprint";
    el.innerHTML = `<p class="meta"><a href="/archive/list.html?cat=${p.category}">${d.categories[p.category]}</a> › <span class="paper-id" id="paper-id">op:${p.id}</span></p>
      <h1 id="paper-title">${DH.esc(p.title)}</h1><p id="paper-authors">${p.authors.map(DH.esc).join(", ")}</p>
      <p class="abstract" id="paper-abstract"><b>Abstract:</b> ${DH.esc(p.abstract)}</p>
      <table class="data" style="max-width:900px"><tr><th>Comments</th><td id="paper-comments">${DH.esc(p.comments)}</td></tr>
      <tr><th>Subjects</th><td id="paper-subjects">${[p.category, ...p.cross].map(c => `${d.categories[c]} (${c})`).join("; ")}</td></tr></table>
      <h2>Submission history</h2><ul class="history" id="history">${p.versions.map(v => `<li id="version-${v.v}">[v${v.v}] ${v.date}</li>`).join("")}</ul>`;
  },
};
