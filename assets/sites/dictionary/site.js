// Wordhoard: look-up box with suggestions, entries grouped by part of speech, A–Z browsing.
"use strict";
const Dict = {
  async data() { return DH.json("/dictionary/data.json"); },
  async suggestions() {
    const d = await Dict.data();
    const box = DH.$("#suggest"), input = DH.$("#dict-q");
    input.addEventListener("input", () => {
      const v = input.value.trim().toLowerCase();
      const words = [...new Set(d.entries.map(e => e.word))].filter(w => v && w.startsWith(v)).slice(0, 6);
      box.innerHTML = words.map((w, i) => `<a href="/dictionary/entry.html?w=${w}" id="suggest-${i + 1}">${w}</a>`).join("");
      box.hidden = !words.length;
    });
    document.addEventListener("click", ev => { if (!box.contains(ev.target) && ev.target !== input) box.hidden = true; });
    return d;
  },
  block(e, k) {
    return `<div class="entry-block" id="entry-${k + 1}" data-pos="${e.pos}"><div><span class="headword">${e.word}</span><span class="pos">${e.pos}</span><span class="level">${e.level}</span></div>
      <p><span class="ipa">UK <span class="uk-ipa">${e.uk}</span></span><span class="ipa">US <span class="us-ipa">${e.us}</span></span></p>
      <ol>${e.senses.map(s => `<li class="sense"><div class="def">${DH.esc(s.def)}</div><div class="example">${DH.esc(s.example)}</div></li>`).join("")}</ol>
      ${e.synonyms.length ? `<p>Synonyms: <span class="synonyms">${e.synonyms.join(", ")}</span></p>` : ""}
      <p class="meta">Origin: <span class="origin">${DH.esc(e.origin)}</span></p></div>`;
  },
  async entry() {
    const d = await Dict.suggestions();
    const w = DH.q("w").trim().toLowerCase();
    DH.$("#dict-q").value = w;
    const found = d.entries.filter(e => e.word === w);
    document.title = (found.length ? w : "Not found") + " — Wordhoard";
    DH.$("#entry").innerHTML = found.length ? `<h1>Meaning of <span id="entry-word">${w}</span> in English</h1>` + found.map(Dict.block).join("")
      : `<h1 id="not-found">No entry for “${DH.esc(w)}”</h1><p>Did you mean: ${d.entries.filter(e => e.word[0] === w[0]).slice(0, 5).map(e => `<a href="/dictionary/entry.html?w=${e.word}">${e.word}</a>`).join(", ") || "—"}</p>`;
  },
  async home() {
    const d = await Dict.suggestions();
    const e = d.entries.find(x => x.word === d.word_of_the_day);
    DH.$("#wotd").innerHTML = `<h2>Word of the day: <a href="/dictionary/entry.html?w=${e.word}" id="wotd-word">${e.word}</a></h2><p>${DH.esc(e.senses[0].def)}</p>`;
    DH.$("#recent").innerHTML = d.entries.slice(0, 6).map(x => `<div class="card"><h3><a href="/dictionary/entry.html?w=${x.word}">${x.word}</a></h3><div class="meta">${x.pos}</div></div>`).join("");
  },
  async browse() {
    const d = await Dict.suggestions();
    const letter = DH.q("letter", "a");
    DH.$("#letters").innerHTML = "abcdefghijklmnopqrstuvwxyz".split("").map(c => `<a href="/dictionary/browse.html?letter=${c}" id="letter-${c}">${c.toUpperCase()}</a>`).join("");
    const words = [...new Set(d.entries.map(e => e.word))].filter(w => w[0] === letter).sort();
    DH.$("#words").innerHTML = words.map(w => `<li><a href="/dictionary/entry.html?w=${w}" id="word-${w}">${w}</a></li>`).join("") || "<li>No words under this letter yet.</li>";
  },
};
