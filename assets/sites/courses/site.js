// Learnwell: course catalogue with filters/sort/pages, course pages with syllabus, an enrolment
// form (free courses enrol at once; paid ones have "Enrol and pay", the binding action).
"use strict";
const Courses = {
  PER_PAGE: 8,
  async data() { return DH.json("/courses/data.json"); },
  price(c) { return c.price ? `$${c.price}/month` : "Free"; },
  async list() {
    const d = await Courses.data();
    DH.$("#subject").innerHTML += d.subjects.map(s => `<option>${s}</option>`).join("");
    const lv = DH.all("level");
    DH.$("#levels").innerHTML = d.levels.map(l => `<label><input type="checkbox" name="level" value="${l}" id="level-${l}"${lv.includes(l) ? " checked" : ""}> ${l}</label>`).join("");
    for (const k of ["q", "sort", "subject", "maxweeks"]) DH.$("#" + k).value = DH.q(k);
    DH.$("#top-q").value = DH.q("q");
    DH.$("#free").checked = DH.q("free") === "1";
    const form = DH.$("#filters");
    form.querySelectorAll("select, input[type=checkbox]").forEach(el => el.addEventListener("change", () => form.submit()));
    const words = DH.q("q").toLowerCase().split(/\s+/).filter(Boolean);
    let list = d.courses.filter(c => {
      const hay = (c.title + " " + c.subject + " " + c.provider + " " + c.instructor).toLowerCase();
      return words.every(w => hay.includes(w)) && (!DH.q("subject") || c.subject === DH.q("subject")) &&
        (!lv.length || lv.includes(c.level)) && (!DH.q("maxweeks") || c.weeks <= Number(DH.q("maxweeks"))) && (DH.q("free") !== "1" || c.price === 0);
    });
    const by = {popular: (a, b) => b.enrolled - a.enrolled, rating: (a, b) => b.rating - a.rating || b.reviews - a.reviews,
      short: (a, b) => a.weeks - b.weeks || (a.title < b.title ? -1 : 1)}[DH.q("sort")];
    if (by) list.sort(by);
    const pages = Math.max(1, Math.ceil(list.length / Courses.PER_PAGE));
    const page = Math.min(pages, Math.max(1, Number(DH.q("page", "1")) || 1));
    DH.$("#count").textContent = `${list.length} courses`;
    DH.$("#results").innerHTML = DH.slice(list, page, Courses.PER_PAGE).map((c, i) => `<div class="row course-row" data-testid="course-row" id="row-${c.id}"><div>
      <div class="meta">${DH.esc(c.provider)}</div><h3><a href="/courses/course.html?id=${c.id}" id="result-${(page - 1) * Courses.PER_PAGE + i + 1}" data-testid="course-link">${DH.esc(c.title)}</a></h3>
      <div class="meta">${c.level} · ${c.weeks} weeks · <span class="stars">★</span> ${c.rating} (${c.reviews} reviews) · ${c.enrolled.toLocaleString("en-US")} enrolled</div></div>
      <div class="price">${Courses.price(c)}</div></div>`).join("") || `<p id="no-results">No courses match.</p>`;
    DH.pager(DH.$("#pager"), page, pages);
  },
  async course() {
    const d = await Courses.data();
    const c = d.courses.find(x => x.id === DH.q("id"));
    const el = DH.$("#course");
    if (!c) { el.innerHTML = "<h1>Course not found</h1>"; return; }
    document.title = c.title + " — Learnwell";
    el.innerHTML = `<p class="meta">${c.subject} · offered by <span id="course-provider">${DH.esc(c.provider)}</span></p><h1 id="course-title">${DH.esc(c.title)}</h1>
      <p>Taught by <span id="course-instructor">${DH.esc(c.instructor)}</span> · <span id="course-level">${c.level}</span> level</p>
      <p><span class="stars">★</span> <b id="course-rating">${c.rating}</b> (${c.reviews} reviews) · <span id="course-enrolled">${c.enrolled.toLocaleString("en-US")}</span> already enrolled</p>
      <table class="data" style="max-width:760px"><tr><th>Length</th><td id="course-length">${c.weeks} weeks, about ${c.hours_per_week} hours a week</td></tr>
      <tr><th>Starts</th><td id="course-starts">${c.starts}</td></tr><tr><th>Taught in</th><td id="course-language">${c.language}</td></tr>
      <tr><th>Subtitles</th><td id="course-subtitles">${c.subtitles.join(", ")}</td></tr><tr><th>Price</th><td id="course-price">${Courses.price(c)}</td></tr>
      <tr><th>Certificate</th><td id="course-certificate">${c.certificate ? "Shareable certificate on completion" : "No certificate"}</td></tr></table>
      <p><a class="btn" href="/courses/enroll.html?id=${c.id}" id="enroll-btn">${c.price ? "Enrol" : "Enrol for free"}</a></p>
      <h2>Syllabus</h2><ol class="modules" id="modules">${c.modules.map(m => `<li>${DH.esc(m)}</li>`).join("")}</ol>`;
  },
  async enroll() {
    const d = await Courses.data();
    const c = d.courses.find(x => x.id === DH.q("id"));
    if (!c) { DH.$("#summary").innerHTML = "<p>Course not found.</p>"; return; }
    DH.$("#summary").innerHTML = `<p id="enroll-course"><b>${DH.esc(c.title)}</b> — ${Courses.price(c)}</p>`;
    if (!c.price) { DH.$("#enroll-plan").closest("div").querySelector("label[for=enroll-plan]").hidden = true; DH.$("#enroll-plan").hidden = true; DH.$("#start-subscription").textContent = "Enrol for free"; }
    DH.$("#enroll-form").addEventListener("submit", async ev => {
      ev.preventDefault();
      const body = {course: c.id, name: DH.$("#enroll-name").value.trim(), email: DH.$("#enroll-email").value.trim(), plan: c.price ? DH.$("#enroll-plan").value : "Free", paid: c.price > 0};
      if (!body.name || !body.email) { const e = DH.$("#enroll-error"); e.hidden = false; e.textContent = "Name and email are required."; return; }
      const r = await DH.post("/courses/api/enroll", body);
      DH.$("#done").innerHTML = r.ok ? `<p class="success" id="enrolled">You're enrolled. Welcome!</p>` : "";
    });
  },
  async my() {
    const d = await Courses.data();
    const st = await DH.json("/courses/api/state");
    DH.$("#results").innerHTML = st.enrollments.map(e => { const c = d.courses.find(x => x.id === e.course); return `<div class="row"><h3>${DH.esc(c.title)}</h3><div class="meta">${DH.esc(e.plan)}</div></div>`; }).join("") || "<p>You are not enrolled in any course.</p>";
  },
};
