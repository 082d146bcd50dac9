"""Regenerate the offline task file and its solver plans from the site data.

Run `python assets/tasks/_build/build_tasks.py` after `assets/sites/_build/build.py`.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

SITE_MODULES = ["recipes_tasks", "shop_tasks", "flights_tasks", "hotels_tasks", "news_tasks",
                "code_tasks", "archive_tasks", "dictionary_tasks", "sports_tasks",
                "courses_tasks"]


def main() -> None:
    tasks, sols = [], []
    for name in SITE_MODULES:
        book = importlib.import_module(name).build()
        tasks += book.tasks
        sols += book.solutions
    out = HERE.parent
    with open(out / "offline-webvoyager.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(t, ensure_ascii=False) + "\n" for t in tasks)
    with open(out / "offline-webvoyager.solutions.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(s, ensure_ascii=False) + "\n" for s in sols)
    print(f"{len(tasks)} tasks")


if __name__ == "__main__":
    main()
