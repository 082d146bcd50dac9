// Hearthbook: recipe listing with search, filters, sorting and pagination; detail page; recipe box.
"use strict";
const Recipes = {
  PER_PAGE: 12,
  palette: ["#9a3b1f", "#5c7d2b", "#2f6f8a", "#8a5a2f", "#6b3f8a", "#2f8a6b"],
  async data() { return (await DH.json("/recipes/data.json")).recipes; },
  filter(all) {
    const words = DH.q("q").toLowerCase().split(/\s+/).filter(Boolean);
    let out = all.filter(r => {
      const hay = (r.title + " " + r.cuisine + " " + r.category + " " + r.ingredients.join(" ")).toLowerCase();
      if (!words.every(w => hay.includes(w))) return false;
      if (DH.q("cuisine") && r.cuisine !== DH.q("cuisine")) return false;
      if (DH.q("category") && r.category !== DH.q("category")) return false;
      if (DH.q("veg") === "1" && !r.vegetarian) return false;
      if (DH.q("maxtime") && r.total > Number(DH.q("maxtime"))) return false;
      if (DH.q("minrating") && r.rating < Number(DH.q("minrating"))) return false;
      return true;
    });
    const s = DH.q("sort");
    const by = {
      rating: (a, b) => b.rating - a.rating || b.reviews - a.reviews,
      reviews: (a, b) => b.reviews - a.reviews,
      time: (a, b) => a.total - b.total || a.title.localeCompare(b.title),
      newest: (a, b) => b.published.localeCompare(a.published),
    }[s];
    if (by) out = out.slice().sort(by);
    return out;
  },
  card(r, i) {
    const color = Recipes.palette[Number(r.id.slice(1)) % Recipes.palette.length];
    return `<div class="card" data-testid="recipe-card" id="card-${r.id}">
      <div class="thumb" style="background:${color}">${DH.esc(r.title[0])}</div>
      <h3><a href="/recipes/recipe.html?id=${r.id}" id="result-${i + 1}" data-testid="recipe-link">${DH.esc(r.title)}</a></h3>
      <div class="meta"><span class="stars">${DH.stars(r.rating)}</span> ${r.rating} (${r.reviews} reviews)</div>
      <div class="meta">${r.cuisine} · ${r.category} · ${r.total} min${r.vegetarian ? ' · <span class="tag">Vegetarian</span>' : ""}</div></div>`;
  },
  async list() {
    const all = await Recipes.data();
    const cuisines = [...new Set(all.map(r => r.cuisine))].sort();
    DH.$("#cuisine").innerHTML += cuisines.map(c => `<option value="${c}">${c}</option>`).join("");
    const cats = [...new Set(all.map(r => r.category))].sort();
    DH.$("#category").innerHTML += cats.map(c => `<option value="${c}">${c}</option>`).join("");
    for (const id of ["q", "sort", "cuisine", "category", "maxtime", "minrating"]) DH.$("#" + id).value = DH.q(id);
    DH.$("#veg").checked = DH.q("veg") === "1";
    const form = DH.$("#filters");
    form.querySelectorAll("select, input[type=checkbox]").forEach(el => el.addEventListener("change", () => form.submit()));
    const found = Recipes.filter(all);
    const pages = Math.max(1, Math.ceil(found.length / Recipes.PER_PAGE));
    const page = Math.min(pages, Math.max(1, Number(DH.q("page", "1")) || 1));
    DH.$("#count").textContent = `${found.length} recipes`;
    DH.$("#results").innerHTML = found.length
      ? DH.slice(found, page, Recipes.PER_PAGE).map((r, i) => Recipes.card(r, (page - 1) * Recipes.PER_PAGE + i)).join("")
      : `<p id="no-results">No recipes match your search.</p>`;
    DH.pager(DH.$("#pager"), page, pages);
  },
  async detail() {
    const all = await Recipes.data();
    const r = all.find(x => x.id === DH.q("id"));
    const main = DH.$("#recipe");
    if (!r) { main.innerHTML = "<h1>Recipe not found</h1>"; return; }
    document.title = r.title + " — Hearthbook";
    main.innerHTML = `<p class="meta"><a href="/recipes/?cuisine=${r.cuisine}">${r.cuisine}</a> › <a href="/recipes/?category=${r.category}">${r.category}</a></p>
      <h1 id="recipe-title">${DH.esc(r.title)}</h1>
      <p>${DH.esc(r.summary)}</p>
      <p class="meta">By <span id="recipe-author">${DH.esc(r.author)}</span> · published <span id="recipe-published">${r.published}</span></p>
      <p><span class="stars">${DH.stars(r.rating)}</span> <b id="recipe-rating">${r.rating}</b> from <span id="recipe-reviews">${r.reviews}</span> reviews
      ${r.vegetarian ? '<span class="tag" id="veg-tag">Vegetarian</span>' : ""}</p>
      <div class="recipe-facts"><div>Prep<b id="recipe-prep">${r.prep} min</b></div><div>Cook<b id="recipe-cook">${r.cook} min</b></div>
      <div>Total<b id="recipe-total">${r.total} min</b></div><div>Servings<b id="recipe-servings">${r.servings}</b></div>
      <div>Calories<b id="recipe-calories">${r.calories} kcal</b></div></div>
      <p><button id="save-recipe">Save to recipe box</button> <span id="save-msg"></span></p>
      <div class="cols"><div class="panel"><h2>Ingredients</h2><ul id="ingredients">${r.ingredients.map(x => `<li>${DH.esc(x)}</li>`).join("")}</ul></div>
      <div class="panel"><h2>Method</h2><ol id="steps">${r.steps.map(x => `<li>${DH.esc(x)}</li>`).join("")}</ol></div></div>`;
    DH.$("#save-recipe").addEventListener("click", async () => {
      await DH.post("/recipes/api/save", {id: r.id});
      DH.$("#save-msg").textContent = "Saved to your recipe box.";
    });
  },
  async box() {
    const all = await Recipes.data();
    const st = await DH.json("/recipes/api/state");
    const items = st.saved.map(id => all.find(r => r.id === id)).filter(Boolean);
    DH.$("#box").innerHTML = items.length ? items.map(r => `<div class="row"><h3><a href="/recipes/recipe.html?id=${r.id}">${DH.esc(r.title)}</a></h3></div>`).join("")
      : "<p>Your recipe box is empty.</p>";
  },
};
