"""Code-hosting data: 40 invented repositories with issues and releases."""

from __future__ import annotations

import datetime as dt

from common import person, rng, write_json

OWNERS = ["tidewater", "quillsoft", "mossgarden", "ferrous-labs", "inkwell-dev", "pinecone-tools",
          "lowtide", "hollowbit"]
WORDS = {"lex": "tokenising source text", "parse": "parsing configuration files",
         "queue": "background job queues", "cache": "in-memory caching with expiry",
         "cli": "building command-line interfaces", "graph": "graph algorithms and traversal",
         "sync": "syncing folders between machines", "mail": "sending and templating email",
         "image": "resizing and converting images", "geo": "geographic coordinates and distances",
         "time": "parsing dates and time zones", "log": "structured logging"}
SUFFIX = ["kit", "ly", "box", "flow", "forge", "wise", "mate", "craft"]
LANGS = ["Python", "Rust", "Go", "TypeScript", "C++", "Java"]
LICENSES = ["MIT", "Apache-2.0", "BSD-3-Clause", "GPL-3.0", "MPL-2.0"]
LABELS = ["bug", "enhancement", "documentation", "question", "good first issue"]
ISSUES = ["Crash when input is empty", "Support for Windows paths", "Docs: example in README is outdated",
          "Add a --quiet flag", "Memory grows with long inputs", "Wrong result for unicode input",
          "Release notes missing for last version", "Tests fail on ARM", "Add type hints",
          "Slow start-up on large projects", "Option to disable colours", "Typo in error message"]


def build() -> list[dict]:
    r = rng("code")
    repos, names = [], set()
    while len(repos) < 40:
        word = r.choice(list(WORDS))
        name = word + r.choice(SUFFIX)
        owner = OWNERS[len(repos) % len(OWNERS)]
        if name in names:
            continue
        names.add(name)
        lang = r.choice(LANGS)
        updated = dt.date(2027, 2, 28) - dt.timedelta(days=r.randint(0, 400))
        issues = []
        for n in range(1, r.randint(4, 12) + 1):
            issues.append({"number": n, "title": r.choice(ISSUES), "state": r.choice(["open", "open", "closed"]),
                           "labels": sorted(r.sample(LABELS, r.randint(1, 2)), key=LABELS.index),
                           "author": r.choice(OWNERS + ["kbrandt", "ovidiu-p", "marisol-dev", "jt-walker"]),
                           "comments": r.randint(0, 30),
                           "opened": (updated - dt.timedelta(days=r.randint(1, 300))).isoformat()})
        major, minor = r.randint(0, 3), r.randint(0, 12)
        releases = []
        day = updated
        for k in range(r.randint(2, 5)):
            releases.append({"version": f"v{major}.{max(minor - k, 0)}.{r.randint(0, 9) if k else 0}",
                             "date": day.isoformat(), "notes": r.choice(["Bug fixes.", "Faster start-up.", "New options.", "Dropped old platforms."])})
            day -= dt.timedelta(days=r.randint(20, 120))
        repos.append({
            "full": f"{owner}/{name}", "owner": owner, "name": name, "language": lang,
            "description": f"A small {lang} library for {WORDS[word]}.", "topics": [word, lang.lower(), r.choice(["fast", "tiny", "safe", "async"])],
            "stars": r.randint(3, 24000), "forks": r.randint(0, 2100), "license": r.choice(LICENSES),
            "updated": updated.isoformat(), "issues": issues, "releases": releases,
            "files": ["README.md", "LICENSE", "src/", "tests/", r.choice(["pyproject.toml", "Cargo.toml", "go.mod", "package.json", "CMakeLists.txt", "pom.xml"])],
            "maintainer": person(r),
            "readme": f"{name} is a {lang} library for {WORDS[word]}. It has no runtime dependencies and is maintained by {owner}.",
        })
    write_json("code", "data.json", {"repos": repos, "languages": LANGS, "labels": LABELS})
    write_json("code", "search-index.json", [
        {"title": x["full"], "url": f"/code/repo.html?r={x['full']}", "snippet": x["description"], "site": "Forgeline"}
        for x in repos])
    return repos
