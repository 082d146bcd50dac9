"""Online-course data: 40 invented courses with syllabi, ratings and prices."""

from __future__ import annotations

from common import person, rng, write_json

SUBJECTS = {
    "Data Science": ["Practical Statistics", "Data Cleaning", "Forecasting", "SQL for Analysts", "Data Visualisation"],
    "Computer Science": ["Algorithms", "Operating Systems", "Compilers", "Web Security", "Distributed Systems"],
    "Business": ["Project Management", "Negotiation", "Bookkeeping", "Marketing Analytics", "Supply Chains"],
    "Languages": ["Spanish for Travellers", "Beginner Japanese", "Academic English", "Italian Conversation"],
    "Health": ["Nutrition Basics", "Sleep Science", "First Aid", "Sports Physiology"],
    "Arts": ["Watercolour", "Music Theory", "Photography", "Creative Writing"],
}
LEVELS = ["Beginner", "Intermediate", "Advanced"]
PROVIDERS = ["Northfold University", "Meridian Institute", "Calder School of Design", "Tessaly Online",
             "Brightwater College"]
ADJ = ["Foundations of", "Hands-on", "Introduction to", "Applied", "Mastering", "Essentials of"]


def build() -> list[dict]:
    r = rng("courses")
    courses, titles = [], set()
    subjects = list(SUBJECTS)
    while len(courses) < 40:
        subj = subjects[len(courses) % len(subjects)]
        topic = r.choice(SUBJECTS[subj])
        title = f"{r.choice(ADJ)} {topic}"
        if title in titles:
            continue
        titles.add(title)
        weeks = r.choice([3, 4, 5, 6, 8, 10, 12])
        free = r.random() < .3
        courses.append({
            "id": f"c{101 + len(courses)}", "title": title, "subject": subj, "level": r.choice(LEVELS),
            "provider": r.choice(PROVIDERS), "instructor": person(r), "weeks": weeks,
            "hours_per_week": r.choice([2, 3, 4, 5, 6, 8]), "rating": round(r.uniform(3.9, 4.9), 1),
            "reviews": r.randint(30, 9000), "enrolled": r.randint(800, 240000),
            "language": r.choice(["English"] * 4 + ["Spanish", "French"]),
            "subtitles": sorted(r.sample(["English", "Spanish", "French", "German", "Japanese", "Arabic"], r.randint(1, 4))),
            "price": 0 if free else r.choice([39, 49, 59, 79]), "certificate": not free or r.random() < .5,
            "starts": f"2027-03-{r.choice([8, 15, 22, 29])}",
            "modules": [f"Week {i + 1}: {r.choice(['Core ideas', 'Worked examples', 'Tools', 'Case study', 'Project', 'Review and quiz', 'Common mistakes'])} of {topic.lower()}" for i in range(weeks)],
        })
    write_json("courses", "data.json", {"courses": courses, "subjects": subjects, "levels": LEVELS})
    write_json("courses", "search-index.json", [
        {"title": c["title"], "url": f"/courses/course.html?id={c['id']}",
         "snippet": f"{c['provider']} · {c['level']} · {c['weeks']} weeks", "site": "Learnwell"} for c in courses])
    return courses
