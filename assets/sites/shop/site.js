// Cartwheel Market: listing with search/filters/sort/pages, product page, cart and a two-step checkout.
"use strict";
const Shop = {
  PER_PAGE: 10,
  palette: ["#1f6f5c", "#7a4b9a", "#a0522d", "#2f5d8a", "#8a7a2f", "#9a2f4b", "#3f7a2f", "#4b4b6b"],
  async data() { return DH.json("/shop/data.json"); },
  async cart() { return DH.json("/shop/api/state"); },
  async header() {
    const st = await Shop.cart();
    DH.$("#cart-count").textContent = st.cart.reduce((n, l) => n + l.qty, 0);
    return st;
  },
  swatch(p) { return `<div class="swatch" style="background:${Shop.palette[Number(p.sku.slice(1, 2)) - 1]}">${DH.esc(p.brand[0])}</div>`; },
  filter(all) {
    const words = DH.q("q").toLowerCase().split(/\s+/).filter(Boolean);
    const brands = DH.all("brand");
    let out = all.filter(p => {
      const hay = (p.name + " " + p.category + " " + p.description).toLowerCase();
      if (!words.every(w => hay.includes(w))) return false;
      if (DH.q("category") && p.category !== DH.q("category")) return false;
      if (brands.length && !brands.includes(p.brand)) return false;
      if (DH.q("min") && p.price < Number(DH.q("min"))) return false;
      if (DH.q("max") && p.price > Number(DH.q("max"))) return false;
      if (DH.q("minrating") && p.rating < Number(DH.q("minrating"))) return false;
      if (DH.q("instock") === "1" && p.stock === "Out of stock") return false;
      return true;
    });
    const by = {
      price_asc: (a, b) => a.price - b.price, price_desc: (a, b) => b.price - a.price,
      rating: (a, b) => b.rating - a.rating || b.reviews - a.reviews, reviews: (a, b) => b.reviews - a.reviews,
    }[DH.q("sort")];
    if (by) out = out.slice().sort(by);
    return out;
  },
  async list() {
    Shop.header();
    const d = await Shop.data();
    DH.$("#category").innerHTML += d.categories.map(c => `<option value="${c}">${c}</option>`).join("");
    const chosen = DH.all("brand");
    DH.$("#brands").innerHTML = d.brands.map(b => `<label><input type="checkbox" name="brand" value="${b}" id="brand-${b}"${chosen.includes(b) ? " checked" : ""}> ${b}</label>`).join("");
    for (const id of ["q", "sort", "category", "min", "max", "minrating"]) DH.$("#" + id).value = DH.q(id);
    DH.$("#instock").checked = DH.q("instock") === "1";
    const form = DH.$("#filters");
    form.querySelectorAll("select, input[type=checkbox]").forEach(el => el.addEventListener("change", () => form.submit()));
    const found = Shop.filter(d.products);
    const pages = Math.max(1, Math.ceil(found.length / Shop.PER_PAGE));
    const page = Math.min(pages, Math.max(1, Number(DH.q("page", "1")) || 1));
    DH.$("#count").textContent = `${found.length} results`;
    DH.$("#results").innerHTML = found.length ? DH.slice(found, page, Shop.PER_PAGE).map((p, i) => `
      <div class="row product-row" data-testid="product-row" id="row-${p.sku}">${Shop.swatch(p)}
      <div><h3><a href="/shop/product.html?sku=${p.sku}" id="result-${(page - 1) * Shop.PER_PAGE + i + 1}" data-testid="product-link">${DH.esc(p.name)}</a></h3>
      <div class="meta"><span class="stars">${DH.stars(p.rating)}</span> ${p.rating} · ${p.reviews} ratings</div>
      <div class="meta">${p.category} · ${p.stock === "Out of stock" ? '<span class="oos">Out of stock</span>' : p.stock}</div></div>
      <div class="price">${DH.money(p.price)}</div></div>`).join("") : `<p id="no-results">No products match.</p>`;
    DH.pager(DH.$("#pager"), page, pages);
  },
  async product() {
    Shop.header();
    const d = await Shop.data();
    const p = d.products.find(x => x.sku === DH.q("sku"));
    const main = DH.$("#product");
    if (!p) { main.innerHTML = "<h1>Product not found</h1>"; return; }
    document.title = p.name + " — Cartwheel Market";
    const oos = p.stock === "Out of stock";
    main.innerHTML = `<p class="meta"><a href="/shop/?category=${encodeURIComponent(p.category)}">${p.category}</a> › ${DH.esc(p.brand)}</p>
      <div class="pd">${Shop.swatch(p)}<div>
      <h1 id="product-name">${DH.esc(p.name)}</h1>
      <p><span class="stars">${DH.stars(p.rating)}</span> <b id="product-rating">${p.rating}</b> out of 5 · <span id="product-reviews">${p.reviews}</span> ratings</p>
      <p class="price" id="product-price">${DH.money(p.price)}</p>
      <p id="product-stock" class="${oos ? "oos" : ""}">${p.stock}</p>
      <p>${DH.esc(p.description)}</p>
      <table class="data" id="specs"><tr><th>Brand</th><td>${p.brand}</td></tr>${Object.entries(p.specs).map(([k, v]) => `<tr><th>${k}</th><td>${v}</td></tr>`).join("")}</table>
      <p style="margin-top:16px"><label>Colour <select id="color">${p.colors.map(c => `<option>${c}</option>`).join("")}</select></label>
      <label style="margin-left:16px">Quantity <select id="qty">${[1, 2, 3, 4, 5].map(n => `<option>${n}</option>`).join("")}</select></label></p>
      <p><button id="add-to-cart"${oos ? " disabled" : ""}>Add to cart</button> <span id="added-msg"></span></p></div></div>`;
    DH.$("#add-to-cart").addEventListener("click", async () => {
      const r = await DH.post("/shop/api/cart/add", {sku: p.sku, qty: Number(DH.$("#qty").value), color: DH.$("#color").value});
      if (r.ok) { DH.$("#added-msg").innerHTML = `Added to cart. <a href="/shop/cart.html" id="go-cart">View cart</a>`; Shop.header(); }
    });
  },
  summary(st) {
    const total = st.cart.reduce((s, l) => s + l.price * l.qty, 0);
    return `<table class="data" id="cart-table"><tr><th>Item</th><th>Price</th><th>Qty</th><th>Subtotal</th></tr>` +
      st.cart.map(l => `<tr data-sku="${l.sku}"><td>${DH.esc(l.name)}</td><td>${DH.money(l.price)}</td><td>${l.qty}</td><td>${DH.money(l.price * l.qty)}</td></tr>`).join("") +
      `<tr><th colspan="3">Total</th><th id="cart-total">${DH.money(total)}</th></tr></table>`;
  },
};
Shop.cartPage = async function () {
  const st = await Shop.header();
  const el = DH.$("#cart");
  if (!st.cart.length) { el.innerHTML = `<p id="cart-empty">Your cart is empty. <a href="/shop/">Continue shopping</a></p>`; return; }
  el.innerHTML = `<table class="data" id="cart-table"><tr><th>Item</th><th>Price</th><th>Quantity</th><th></th></tr>` +
    st.cart.map(l => `<tr data-sku="${l.sku}"><td>${DH.esc(l.name)}</td><td>${DH.money(l.price)}</td>
      <td><select class="qty" id="qty-${l.sku}" data-sku="${l.sku}">${[1, 2, 3, 4, 5].map(n => `<option${n === l.qty ? " selected" : ""}>${n}</option>`).join("")}</select></td>
      <td><button class="secondary remove" id="remove-${l.sku}" data-sku="${l.sku}">Remove</button></td></tr>`).join("") +
    `<tr><th colspan="3">Total</th><th id="cart-total">${DH.money(st.cart.reduce((s, l) => s + l.price * l.qty, 0))}</th></tr></table>
    <p><a class="btn" href="/shop/checkout.html" id="proceed-checkout">Proceed to checkout</a></p>`;
  el.querySelectorAll("select.qty").forEach(s => s.addEventListener("change", async () => { await DH.post("/shop/api/cart/update", {sku: s.dataset.sku, qty: Number(s.value)}); Shop.cartPage(); }));
  el.querySelectorAll("button.remove").forEach(b => b.addEventListener("click", async () => { await DH.post("/shop/api/cart/update", {sku: b.dataset.sku, qty: 0}); Shop.cartPage(); }));
};
Shop.checkout = async function () {
  const st = await Shop.header();
  DH.$("#summary").innerHTML = st.cart.length ? Shop.summary(st) : `<p id="cart-empty">Your cart is empty.</p>`;
  DH.$("#ship-form").addEventListener("submit", async ev => {
    ev.preventDefault();
    const body = {name: DH.$("#ship-name").value, street: DH.$("#ship-street").value, city: DH.$("#ship-city").value,
      zip: DH.$("#ship-zip").value, speed: DH.$("#ship-speed").value};
    const r = await DH.post("/shop/api/checkout", body);
    if (r.ok) location.href = "/shop/payment.html";
    else { const e = DH.$("#ship-error"); e.hidden = false; e.textContent = "Please fill in every field (" + r.error + ")."; }
  });
};
Shop.payment = async function () {
  const st = await Shop.header();
  DH.$("#summary").innerHTML = st.cart.length ? Shop.summary(st) + (st.checkout ? `<p id="ship-to">Shipping to ${DH.esc(st.checkout.name)}, ${DH.esc(st.checkout.street)}, ${DH.esc(st.checkout.city)} ${DH.esc(st.checkout.zip)} — ${DH.esc(st.checkout.speed)}</p>` : "") : `<p id="cart-empty">Your cart is empty.</p>`;
  DH.$("#pay-form").addEventListener("submit", async ev => {
    ev.preventDefault();
    const r = await DH.post("/shop/api/order", {card_name: DH.$("#card-name").value});
    DH.$("#done").innerHTML = r.ok ? `<p class="success" id="order-done">Thank you! Your order has been placed.</p>` : `<p class="notice">${DH.esc(r.error)}</p>`;
    Shop.header();
  });
};
