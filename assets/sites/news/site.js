// The Lantern Post: front page, sections (10 per page, newest first), articles, search, newsletter form.
"use strict";
const News = {
  PER_PAGE: 5,
  async data() {
    const d = await DH.json("/news/data.json");
    d.articles.sort((a, b) => (b.date + b.time).localeCompare(a.date + a.time) || a.id.localeCompare(b.id));
    return d;
  },
  when(a) { return `${a.date} ${a.time}`; },
  item(a, i) {
    return `<div class="row" data-testid="article-row" id="row-${a.id}"><div class="kicker">${a.section}</div>
      <h3><a href="/news/article.html?id=${a.id}" id="result-${i + 1}" data-testid="article-link">${DH.esc(a.headline)}</a></h3>
      <div>${DH.esc(a.standfirst)}</div><div class="meta">By ${DH.esc(a.author)} · ${News.when(a)}</div></div>`;
  },
  async front() {
    const d = await News.data();
    const lead = d.articles[0];
    DH.$("#lead").innerHTML = `<div class="kicker">${lead.section}</div><h2><a href="/news/article.html?id=${lead.id}" id="lead-link">${DH.esc(lead.headline)}</a></h2><p class="standfirst">${DH.esc(lead.standfirst)}</p><p class="meta">By ${DH.esc(lead.author)} · ${News.when(lead)}</p>`;
    const top = d.articles.slice().sort((a, b) => b.views - a.views).slice(0, 5);
    DH.$("#most-read").innerHTML = top.map((a, i) => `<li><a href="/news/article.html?id=${a.id}" id="most-read-${i + 1}">${DH.esc(a.headline)}</a></li>`).join("");
    DH.$("#by-section").innerHTML = d.sections.map(s => `<div class="sec-block"><h2><a href="/news/section.html?s=${s}">${s}</a></h2><div class="cards">` +
      d.articles.filter(a => a.section === s).slice(0, 3).map(a => `<div class="card"><h3><a href="/news/article.html?id=${a.id}">${DH.esc(a.headline)}</a></h3><div class="meta">${News.when(a)}</div></div>`).join("") + "</div></div>").join("");
  },
  async section() {
    const d = await News.data();
    const s = DH.q("s");
    DH.$("#section-title").textContent = s;
    document.title = s + " — The Lantern Post";
    const list = d.articles.filter(a => a.section === s);
    const pages = Math.max(1, Math.ceil(list.length / News.PER_PAGE));
    const page = Math.min(pages, Math.max(1, Number(DH.q("page", "1")) || 1));
    DH.$("#articles").innerHTML = DH.slice(list, page, News.PER_PAGE).map((a, i) => News.item(a, (page - 1) * News.PER_PAGE + i)).join("") || "<p>No stories.</p>";
    DH.pager(DH.$("#pager"), page, pages);
  },
  async article() {
    const d = await News.data();
    const a = d.articles.find(x => x.id === DH.q("id"));
    const el = DH.$("#article");
    if (!a) { el.innerHTML = "<h1>Story not found</h1>"; return; }
    document.title = a.headline + " — The Lantern Post";
    el.innerHTML = `<div class="kicker"><a href="/news/section.html?s=${a.section}" id="article-section">${a.section}</a></div>
      <h1 id="article-headline">${DH.esc(a.headline)}</h1><p class="standfirst">${DH.esc(a.standfirst)}</p>
      <p class="meta">By <span id="article-author">${DH.esc(a.author)}</span> · <span id="article-date">${a.date}</span> ${a.time} · ${a.minutes} min read</p>
      <div id="article-body">${a.body.map(p => `<p>${DH.esc(p)}</p>`).join("")}</div>
      ${a.correction ? `<p class="notice" id="correction"><b>Correction:</b> ${DH.esc(a.correction)}</p>` : ""}`;
  },
  async search() {
    const d = await News.data();
    DH.$("#section").innerHTML += d.sections.map(s => `<option>${s}</option>`).join("");
    for (const k of ["q", "section", "sort"]) DH.$("#" + k).value = DH.q(k);
    DH.$("#section").addEventListener("change", () => DH.$("#section").form.submit());
    DH.$("#sort").addEventListener("change", () => DH.$("#sort").form.submit());
    const words = DH.q("q").toLowerCase().split(/\s+/).filter(Boolean);
    let hits = d.articles.map(a => {
      const h = a.headline.toLowerCase(), t = (a.standfirst + " " + a.body.join(" ")).toLowerCase();
      const ok = words.length && words.every(w => h.includes(w) || t.includes(w));
      return {a, ok, score: words.filter(w => h.includes(w)).length};
    }).filter(x => x.ok && (!DH.q("section") || x.a.section === DH.q("section")));
    if (DH.q("sort") === "oldest") hits.reverse();
    else if (DH.q("sort") !== "newest") hits.sort((x, y) => y.score - x.score);
    DH.$("#count").textContent = words.length ? `${hits.length} results` : "Enter a search term.";
    DH.$("#articles").innerHTML = hits.map((x, i) => News.item(x.a, i)).join("");
  },
  async newsletter() {
    const d = await News.data();
    DH.$("#nl-topics").innerHTML = d.sections.map(s => `<label><input type="checkbox" id="topic-${s}" value="${s}"> ${s}</label>`).join("");
    DH.$("#nl-form").addEventListener("submit", async ev => {
      ev.preventDefault();
      const topics = d.sections.filter(s => DH.$("#topic-" + s).checked);
      const email = DH.$("#nl-email").value.trim();
      if (!email.includes("@") || !topics.length) { const e = DH.$("#nl-error"); e.hidden = false; e.textContent = "Enter an email address and pick at least one topic."; return; }
      const r = await DH.post("/news/api/subscribe", {email, topics, frequency: DH.$("#nl-frequency").value});
      DH.$("#done").innerHTML = r.ok ? `<p class="success" id="subscribed">You're subscribed. Check your inbox to confirm.</p>` : "";
    });
  },
};
