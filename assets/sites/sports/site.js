// Scoreline: league table (sortable), results by round, fixtures, match pages with scorers,
// club pages and a top-scorer list.
"use strict";
const Sports = {
  async data() {
    const d = await DH.json("/sports/data.json");
    d.club = Object.fromEntries(d.clubs.map(c => [c.id, c]));
    d.player = Object.fromEntries(d.players.map(p => [p.id, p]));
    return d;
  },
  teamLink(d, id) { return `<a href="/sports/team.html?t=${id}" class="team-link" data-team="${id}">${DH.esc(d.club[id].name)}</a>`; },
};
Sports.table = async function () {
  const d = await Sports.data();
  const rows = Sports.tableRows(d);
  const sort = DH.q("sort");
  const sel = DH.$("#table-sort");
  sel.value = sort;
  sel.addEventListener("change", () => { location.href = DH.withParams({sort: sel.value}); });
  rows.forEach((r, i) => { r.pos = i + 1; });
  const by = {gf: (a, b) => b.gf - a.gf || a.pos - b.pos, ga: (a, b) => a.ga - b.ga || a.pos - b.pos, name: (a, b) => a.name.localeCompare(b.name)}[sort];
  if (by) rows.sort(by);
  DH.$("#played").textContent = `After ${d.played} of ${d.rounds} rounds`;
  DH.$("#league-table").innerHTML = `<tr><th>Pos</th><th>Club</th><th>P</th><th>W</th><th>D</th><th>L</th><th>GF</th><th>GA</th><th>GD</th><th>Pts</th></tr>` +
    rows.map(r => `<tr id="row-${r.id}"><td>${r.pos}</td><td>${Sports.teamLink(d, r.id)}</td><td>${r.p}</td><td class="w">${r.w}</td><td class="d">${r.d}</td><td class="l">${r.l}</td><td class="gf">${r.gf}</td><td class="ga">${r.ga}</td><td class="gd">${r.gd > 0 ? "+" : ""}${r.gd}</td><td class="pts"><b>${r.pts}</b></td></tr>`).join("");
};
Sports.tableRows = function (d) {
  const rows = Object.fromEntries(d.clubs.map(c => [c.id, {id: c.id, name: c.name, p: 0, w: 0, d: 0, l: 0, gf: 0, ga: 0}]));
  for (const m of d.matches) {
    if (m.hg === undefined) continue;
    for (const [t, gf, ga] of [[m.home, m.hg, m.ag], [m.away, m.ag, m.hg]]) {
      const r = rows[t]; r.p++; r.gf += gf; r.ga += ga;
      if (gf > ga) r.w++; else if (gf === ga) r.d++; else r.l++;
    }
  }
  const out = Object.values(rows);
  for (const r of out) { r.gd = r.gf - r.ga; r.pts = 3 * r.w + r.d; }
  return out.sort((a, b) => b.pts - a.pts || b.gd - a.gd || b.gf - a.gf || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
};
Sports.matchRow = function (d, m, i) {
  const played = m.hg !== undefined;
  return `<div class="row match-row" id="match-${m.round}-${m.home}" data-testid="match-row"><div class="home">${Sports.teamLink(d, m.home)}</div>
    <div class="score">${played ? `<a href="/sports/match.html?r=${m.round}&h=${m.home}" id="score-${m.round}-${m.home}">${m.hg} – ${m.ag}</a>` : "v"}</div>
    <div>${Sports.teamLink(d, m.away)}</div><div class="meta">Round ${m.round} · ${m.date}</div></div>`;
};
Sports.results = async function () {
  const d = await Sports.data();
  const sel = DH.$("#round");
  sel.innerHTML = Array.from({length: d.played}, (_, i) => `<option value="${i + 1}">Round ${i + 1}</option>`).join("");
  const rnd = Number(DH.q("round", String(d.played))) || d.played;
  sel.value = String(rnd);
  sel.addEventListener("change", () => sel.form.submit());
  DH.$("#matches").innerHTML = d.matches.filter(m => m.round === rnd).map(m => Sports.matchRow(d, m)).join("");
};
Sports.fixtures = async function () {
  const d = await Sports.data();
  let h = "";
  for (let r = d.played + 1; r <= d.rounds; r++) {
    const ms = d.matches.filter(m => m.round === r);
    h += `<h2 id="round-${r}">Round ${r} · ${ms[0].date}</h2><div class="list">${ms.map(m => Sports.matchRow(d, m)).join("")}</div>`;
  }
  DH.$("#fixtures").innerHTML = h;
};
Sports.match = async function () {
  const d = await Sports.data();
  const m = d.matches.find(x => x.round === Number(DH.q("r")) && x.home === DH.q("h"));
  const el = DH.$("#match");
  if (!m || m.hg === undefined) { el.innerHTML = "<h1>Match not found</h1>"; return; }
  document.title = `${d.club[m.home].name} ${m.hg}-${m.ag} ${d.club[m.away].name} — Scoreline`;
  el.innerHTML = `<p class="meta">Harbour League · Round ${m.round} · <span id="match-date">${m.date}</span> · ${d.club[m.home].ground} · attendance <span id="attendance">${m.attendance}</span></p>
    <div class="match-row panel"><h2 class="home">${Sports.teamLink(d, m.home)}</h2><div class="bigscore" id="final-score">${m.hg} – ${m.ag}</div><h2>${Sports.teamLink(d, m.away)}</h2><div></div></div>
    <h2>Goals</h2><ol id="goals">${m.goals.map(g => `<li class="goal">${g.minute}' <b>${DH.esc(d.player[g.player].name)}</b> (${DH.esc(d.club[g.team].name)})</li>`).join("") || "<li>No goals</li>"}</ol>`;
};
Sports.team = async function () {
  const d = await Sports.data();
  const c = d.club[DH.q("t")];
  const el = DH.$("#team");
  if (!c) { el.innerHTML = "<h1>Club not found</h1>"; return; }
  document.title = c.name + " — Scoreline";
  const goals = {};
  for (const m of d.matches) for (const g of m.goals || []) goals[g.player] = (goals[g.player] || 0) + 1;
  const ms = d.matches.filter(m => m.home === c.id || m.away === c.id);
  el.innerHTML = `<h1 id="team-name">${DH.esc(c.name)}</h1><p>Founded <span id="team-founded">${c.founded}</span> · Ground: <span id="team-ground">${c.ground}</span></p>
    <h2>Squad</h2><table class="data" id="squad"><tr><th>Player</th><th>Position</th><th>League goals</th></tr>${d.players.filter(p => p.team === c.id).map(p => `<tr><td>${DH.esc(p.name)}</td><td>${p.position}</td><td>${goals[p.id] || 0}</td></tr>`).join("")}</table>
    <h2>Next matches</h2><div class="list" id="team-fixtures">${ms.filter(m => m.hg === undefined).map(m => Sports.matchRow(d, m)).join("")}</div>
    <h2>Results</h2><div class="list" id="team-results">${ms.filter(m => m.hg !== undefined).reverse().map(m => Sports.matchRow(d, m)).join("")}</div>`;
};
Sports.scorers = async function () {
  const d = await Sports.data();
  const goals = {};
  for (const m of d.matches) for (const g of m.goals || []) goals[g.player] = (goals[g.player] || 0) + 1;
  const list = d.players.filter(p => goals[p.id]).sort((a, b) => goals[b.id] - goals[a.id] || (a.name < b.name ? -1 : 1)).slice(0, 20);
  DH.$("#scorers").innerHTML = `<tr><th>#</th><th>Player</th><th>Club</th><th>Goals</th></tr>` +
    list.map((p, i) => `<tr id="scorer-${i + 1}"><td>${i + 1}</td><td>${DH.esc(p.name)}</td><td>${Sports.teamLink(d, p.team)}</td><td>${goals[p.id]}</td></tr>`).join("");
};
