// Cross-site search over every site's search-index.json. Ranking: exact title match first,
// then the number of query words found in the title (double weight) and the snippet.
"use strict";
(async function () {
  const q = DH.q("q").trim();
  DH.$("#search-q").value = q;
  if (!q) { DH.$("#search-count").textContent = "Type a query to search all local sites."; return; }
  const sites = await DH.json("/sites.json");
  const docs = [];
  for (const s of sites) {
    try { docs.push(...await DH.json(`/${s.slug}/search-index.json`)); } catch (e) { /* site without index */ }
  }
  const ql = q.toLowerCase(), words = ql.split(/\s+/).filter(Boolean);
  const scored = docs.map((d, i) => {
    const t = d.title.toLowerCase(), s = (d.snippet || "").toLowerCase();
    let score = t === ql ? 1000 : 0;
    for (const w of words) { if (t.includes(w)) score += 2; else if (s.includes(w)) score += 1; }
    return {d, i, score};
  }).filter(x => x.score > 0).sort((a, b) => b.score - a.score || a.i - b.i).slice(0, 30);
  DH.$("#search-count").textContent = `${scored.length} results for “${q}”`;
  DH.$("#hits").innerHTML = scored.map((x, n) => `<div class="row hit" data-testid="search-hit">
    <div class="url">${DH.esc(x.d.site)} · ${DH.esc(x.d.url)}</div>
    <h3><a id="hit-${n + 1}" href="${DH.esc(x.d.url)}">${DH.esc(x.d.title)}</a></h3>
    <div>${DH.esc(x.d.snippet || "")}</div></div>`).join("") || `<p id="no-hits">No results.</p>`;
})();
