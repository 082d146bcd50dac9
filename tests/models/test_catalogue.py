"""The model catalogue: both families, sizes, reported scores, and an honest status."""

from __future__ import annotations

from models.catalogue import CATALOGUE, SCORES_SOURCE, entry, recommended


def test_both_families_are_listed_with_the_reported_scores() -> None:
    assert [e.name for e in CATALOGUE] == ["Fara-7B", "Fara1.5-4B", "Fara1.5-9B"]
    assert {e.family for e in CATALOGUE} == {"fara", "fara15"}
    scores = {e.name: (e.webvoyager, e.online_mind2web) for e in CATALOGUE}
    assert scores == {"Fara-7B": (73.5, 34.1), "Fara1.5-4B": (80.8, 57.0),
                      "Fara1.5-9B": (86.6, 63.4)}
    assert "Fara-1.5" in SCORES_SOURCE and "2026" in SCORES_SOURCE
    assert all(e.download_bytes > 0 for e in CATALOGUE)


def test_fara15_is_not_the_default_until_its_export_works() -> None:
    assert recommended().name == "Fara-7B"
    for name in ("Fara1.5-4B", "Fara1.5-9B"):
        item = entry(name)
        assert not item.ready and item.size_is_estimate
        assert "export in progress" in item.summary()
        assert item.size_text().startswith("about ")
    assert "export in progress" not in entry("Fara-7B").summary()


def test_the_first_run_dialog_lists_every_model_and_the_source() -> None:
    from app.firstrun import catalogue_html

    html = catalogue_html()
    for item in CATALOGUE:
        assert item.name in html and item.scores_text() in html
    assert html.count("export in progress") == 2
    assert "recommended" in html and SCORES_SOURCE in html
