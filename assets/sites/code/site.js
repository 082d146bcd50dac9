// Forgeline: repository search, repo page with Code / Issues / Releases tabs, stars, a new-issue
// form whose "Submit new issue" is the binding action, user pages.
"use strict";
const Code = {
  PER_PAGE: 10,
  async data() { return DH.json("/code/data.json"); },
  fmt(n) { return n >= 1000 ? (n / 1000).toFixed(1) + "k" : String(n); },
  row(x, i) {
    return `<div class="row" data-testid="repo-row" id="row-${x.full.replace("/", "--")}"><h3><a href="/code/repo.html?r=${x.full}" id="result-${i + 1}" data-testid="repo-link">${x.full}</a></h3>
      <div>${DH.esc(x.description)}</div><div>${x.topics.map(t => `<span class="tag">${t}</span>`).join("")}</div>
      <div class="meta"><span class="lang-dot"></span>${x.language} · ★ ${Code.fmt(x.stars)} · forks ${Code.fmt(x.forks)} · ${x.license} · updated ${x.updated}</div></div>`;
  },
  async list() {
    const d = await Code.data();
    DH.$("#language").innerHTML += d.languages.map(l => `<option>${l}</option>`).join("");
    for (const k of ["q", "language", "sort"]) DH.$("#" + k).value = DH.q(k);
    DH.$("#top-q").value = DH.q("q");
    DH.$("#filters").querySelectorAll("select").forEach(s => s.addEventListener("change", () => DH.$("#filters").submit()));
    const words = DH.q("q").toLowerCase().split(/\s+/).filter(Boolean);
    let list = d.repos.filter(x => {
      const hay = (x.full + " " + x.description + " " + x.topics.join(" ")).toLowerCase();
      return words.every(w => hay.includes(w)) && (!DH.q("language") || x.language === DH.q("language"));
    });
    const by = {stars: (a, b) => b.stars - a.stars, forks: (a, b) => b.forks - a.forks, updated: (a, b) => b.updated.localeCompare(a.updated)}[DH.q("sort")]
      || ((a, b) => words.filter(w => b.name.includes(w)).length - words.filter(w => a.name.includes(w)).length);
    list.sort(by);
    const pages = Math.max(1, Math.ceil(list.length / Code.PER_PAGE));
    const page = Math.min(pages, Math.max(1, Number(DH.q("page", "1")) || 1));
    DH.$("#count").textContent = `${list.length} repositories`;
    DH.$("#results").innerHTML = DH.slice(list, page, Code.PER_PAGE).map((x, i) => Code.row(x, (page - 1) * Code.PER_PAGE + i)).join("") || `<p id="no-results">No repositories found.</p>`;
    DH.pager(DH.$("#pager"), page, pages);
  },
  async repo() {
    const d = await Code.data();
    const x = d.repos.find(y => y.full === DH.q("r"));
    const el = DH.$("#repo");
    if (!x) { el.innerHTML = "<h1>Repository not found</h1>"; return; }
    document.title = x.full + " — Forgeline";
    const st = await DH.json("/code/api/state");
    const tab = DH.q("tab", "code");
    const open = x.issues.filter(i => i.state === "open").length;
    const t = (id, label) => `<a href="/code/repo.html?r=${x.full}&tab=${id}" id="tab-${id}" class="${tab === id ? "on" : ""}">${label}</a>`;
    let body = "";
    if (tab === "issues") {
      const sf = DH.q("state", "open"), lf = DH.q("label");
      const list = x.issues.filter(i => (sf === "all" || i.state === sf) && (!lf || i.labels.includes(lf)));
      body = `<form method="get" action="/code/repo.html" class="toolbar" id="issue-filters"><input type="hidden" name="r" value="${x.full}"><input type="hidden" name="tab" value="issues">
        <label>State <select name="state" id="issue-state"><option value="open">Open</option><option value="closed">Closed</option><option value="all">All</option></select></label>
        <label>Label <select name="label" id="issue-label-filter"><option value="">Any label</option>${d.labels.map(l => `<option>${l}</option>`).join("")}</select></label>
        <span class="count" id="issue-count">${list.length} issues</span><a class="btn" style="margin-left:auto" href="/code/new-issue.html?r=${x.full}" id="new-issue">New issue</a></form>
        <div class="list">${list.map(i => `<div class="row" id="issue-${i.number}" data-testid="issue-row"><h3>${DH.esc(i.title)} <span class="meta">#${i.number}</span>${i.labels.map(l => `<span class="label ${l === "bug" ? "bug" : ""}">${l}</span>`).join("")}</h3>
          <div class="meta">${i.state === "open" ? "Opened" : "Closed issue opened"} on ${i.opened} by <span class="issue-author">${i.author}</span> · ${i.comments} comments</div></div>`).join("") || "<p>No issues match.</p>"}</div>`;
    } else if (tab === "releases") {
      body = `<div class="list">${x.releases.map((r, k) => `<div class="row" id="release-${k + 1}"><h3>${r.version}${k === 0 ? ' <span class="tag">Latest</span>' : ""}</h3><div class="meta">Released ${r.date}</div><p>${r.notes}</p></div>`).join("")}</div>`;
    } else {
      body = `<div class="layout" style="grid-template-columns:1fr 300px"><div><table class="data files">${x.files.map(f => `<tr><td>${f}</td><td class="meta">updated ${x.updated}</td></tr>`).join("")}</table>
        <div class="panel" style="margin-top:16px"><h2>README.md</h2><p id="readme">${DH.esc(x.readme)}</p></div></div>
        <aside class="panel"><h3>About</h3><p>${DH.esc(x.description)}</p><p>${x.topics.map(t => `<span class="tag">${t}</span>`).join("")}</p>
        <p>License: <b id="repo-license">${x.license}</b></p><p>Language: <b id="repo-language">${x.language}</b></p><p>Maintainer: <span id="repo-maintainer">${DH.esc(x.maintainer)}</span></p>
        <p>Latest release: <a href="/code/repo.html?r=${x.full}&tab=releases" id="latest-release">${x.releases[0].version}</a></p></aside></div>`;
    }
    const starred = st.stars.includes(x.full);
    el.innerHTML = `<div class="repo-head"><h1><a href="/code/user.html?u=${x.owner}" id="owner-link">${x.owner}</a> / <span id="repo-name">${x.name}</span></h1>
      <button class="secondary" id="star-btn">${starred ? "★ Starred" : "☆ Star"}</button> <span id="star-count">${x.stars + (starred ? 1 : 0)}</span> stars · <span id="fork-count">${x.forks}</span> forks</div>
      <div class="tabs">${t("code", "Code")}${t("issues", `Issues <span class="tag" id="open-issues">${open}</span>`)}${t("releases", "Releases")}</div>${body}`;
    if (tab === "issues") {
      DH.$("#issue-state").value = DH.q("state", "open"); DH.$("#issue-label-filter").value = DH.q("label");
      DH.$("#issue-filters").querySelectorAll("select").forEach(s => s.addEventListener("change", () => DH.$("#issue-filters").submit()));
    }
    DH.$("#star-btn").addEventListener("click", async () => { await DH.post("/code/api/star", {repo: x.full}); Code.repo(); });
  },
  async user() {
    const d = await Code.data();
    const u = DH.q("u");
    DH.$("#user-name").textContent = u;
    const list = d.repos.filter(x => x.owner === u);
    DH.$("#results").innerHTML = `<p class="count" id="repo-count">${list.length} repositories</p>` + list.map(Code.row).join("");
  },
  async starred() {
    const d = await Code.data();
    const st = await DH.json("/code/api/state");
    DH.$("#results").innerHTML = d.repos.filter(x => st.stars.includes(x.full)).map(Code.row).join("") || "<p>You have not starred anything yet.</p>";
  },
  async newIssue() {
    const d = await Code.data();
    const repo = DH.q("r");
    DH.$("#issue-repo").textContent = repo;
    DH.$("#issue-label").innerHTML += d.labels.map(l => `<option>${l}</option>`).join("");
    DH.$("#issue-form").addEventListener("submit", async ev => {
      ev.preventDefault();
      const title = DH.$("#issue-title").value.trim();
      if (!title) { const e = DH.$("#issue-error"); e.hidden = false; e.textContent = "A title is required."; return; }
      const r = await DH.post("/code/api/issue", {repo, title, body: DH.$("#issue-body").value, label: DH.$("#issue-label").value});
      DH.$("#done").innerHTML = r.ok ? `<p class="success" id="issue-done">Issue submitted.</p>` : "";
    });
  },
};
