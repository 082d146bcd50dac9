"""Unit tests of every judge check kind with synthetic evidence."""

from __future__ import annotations

import pytest

from agent.eval.judges import Evidence, judge, lookup, normalise, numbers_in, validate_eval


def ev(answer: str = "", **kw) -> Evidence:
    return Evidence(answer=answer, status=kw.pop("status", "success"), **kw)


def checks(*cs: dict) -> dict:
    return {"checks": list(cs)}


def test_normalise_and_numbers() -> None:
    assert normalise("  Crème BRÛLÉE, please! ") == "creme brulee please"
    assert numbers_in("It costs $1,204.99, or 3 payments of 401.66.") == [1204.99, 3.0, 401.66]


@pytest.mark.parametrize(("check", "right", "wrong"), [
    ({"match": "exact", "value": "Ginger Soup"}, "ginger soup.", "Ginger soup, rated 4.5"),
    ({"match": "exact", "values": ["yes", "yes it is"]}, "Yes it is!", "no"),
    ({"match": "must_include", "values": ["Ginger Soup", ["4.9", "4,9"]]},
     "The best is Ginger Soup (4.9 stars).", "The best is Ginger Stew (4.9 stars)."),
    ({"match": "must_exclude", "values": ["in stock"]}, "It is out-of stock", "It is in stock"),
    ({"match": "regex", "pattern": r"out of stock|unavailable"}, "Sadly Out of Stock.", "Available"),
    ({"match": "numeric", "value": 204.99}, "It is $204.99.", "It is $214.99."),
    ({"match": "numeric", "value": 2041, "tolerance": 0}, "2,041 reviews", "2,014 reviews"),
    ({"match": "fuzzy", "value": "Lemony Kale Salad", "threshold": 0.85},
     "I found the Lemony Kale Salads recipe.", "I found the Smoky Beet Slaw recipe."),
])
def test_answer_matches(check: dict, right: str, wrong: str) -> None:
    c = checks({"kind": "answer", **check})
    assert judge(c, ev(right)).passed
    bad = judge(c, ev(wrong))
    assert not bad.passed and bad.reason


def test_empty_answer_fails() -> None:
    assert not judge(checks({"kind": "answer", "match": "regex", "pattern": ".*"}), ev("")).passed


def test_url_rules() -> None:
    c = checks({"kind": "url", "path": "/shop/", "query": {"category": "Headphones",
                                                          "brand": ["Corvel", "Halvard"]}})
    good = "http://127.0.0.1:5/shop/?sort=x&category=Headphones&brand=Halvard&brand=Corvel"
    assert judge(c, ev(final_url=good)).passed
    assert not judge(c, ev(final_url=good.replace("&brand=Corvel", ""))).passed
    assert not judge(c, ev(final_url=good.replace("/shop/", "/recipes/"))).passed
    p = checks({"kind": "url", "path_prefix": "/shop/checkout"})
    assert judge(p, ev(final_url="http://h/shop/checkout.html")).passed
    assert not judge(p, ev(final_url="http://h/shop/cart.html")).passed


def test_page_js_values() -> None:
    expr = "document.querySelector('#title').value"
    c = checks({"kind": "page_js", "expr": expr, "equals": "Crash on start"})
    assert judge(c, ev(page_values={expr: "crash on start"})).passed
    assert not judge(c, ev(page_values={expr: ""})).passed
    assert not judge(c, ev()).passed  # value never collected
    t = checks({"kind": "page_js", "expr": "x", "truthy": True})
    assert judge(t, ev(page_values={"x": 1})).passed and not judge(t, ev(page_values={"x": 0})).passed
    s = checks({"kind": "page_js", "expr": "y", "contains": "issue"})
    assert judge(s, ev(page_values={"y": "New issue"})).passed


def test_state_fields() -> None:
    st = {"shop": {"cart": [{"sku": "P1", "qty": 2, "color": "Navy"}], "order_placed": False,
                   "checkout": {"name": "Dana"}}}
    assert lookup(st, "shop.cart.0.qty") == 2
    good = checks({"kind": "state", "path": "shop.cart", "contains": {"sku": "P1", "qty": 2}},
                  {"kind": "state", "path": "shop.order_placed", "equals": False},
                  {"kind": "state", "path": "shop.checkout.name", "equals": "dana"},
                  {"kind": "state", "path": "shop.cart", "length": 1},
                  {"kind": "state", "path": "shop.orders", "absent": True})
    assert judge(good, ev(server_state=st)).passed
    placed = {"shop": {**st["shop"], "order_placed": True, "orders": [{"total": 1}]}}
    verdict = judge(good, ev(server_state=placed))
    assert not verdict.passed
    assert [c.passed for c in verdict.checks] == [True, False, True, True, False]
    wrong_qty = {"shop": {**st["shop"], "cart": [{"sku": "P1", "qty": 1}]}}
    assert not judge(good, ev(server_state=wrong_qty)).passed


def test_status_and_termination() -> None:
    c = checks({"kind": "status", "equals": "success"})
    assert judge(c, ev("x")).passed
    assert not judge(c, ev("x", status="failure")).passed
    a = checks({"kind": "answer", "match": "must_include", "values": ["x"]})
    assert not judge(a, Evidence(answer="x", status=None)).passed
    assert judge({**a, "require_terminate": False}, Evidence(answer="x", status=None)).passed


@pytest.mark.parametrize("bad", [
    {}, {"checks": []}, {"checks": [{"kind": "nope"}]}, {"checks": [{"kind": "answer"}]},
    {"checks": [{"kind": "answer", "match": "almost"}]},
    {"checks": [{"kind": "state", "path": "a"}]}, {"checks": [{"kind": "url"}]},
])
def test_validate_rejects(bad: dict) -> None:
    with pytest.raises(ValueError):
        validate_eval(bad)
