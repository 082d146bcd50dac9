"""The offline sites' backend: every site's state and the endpoints that change it.

`agent.eval.server` routes `POST /<site>/api/<action>` here (`SiteState.call`); this module
knows nothing about HTTP. Tasks and judges read the state back to check what the agent did.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable
from typing import Any

from agent.paths import asset

SITES_ROOT = asset("sites")

# Every stateful site starts from this; `binding_done` is the uniform flag for "the agent
# performed the irreversible action" (place order, confirm booking, subscribe, submit issue).
_INITIAL_STATE: dict[str, dict[str, Any]] = {
    "shop": {"cart": [], "checkout": None, "orders": [], "order_placed": False,
             "binding_done": False},
    "flights": {"selected": None, "passengers": None, "bookings": [], "booking_confirmed": False,
                "binding_done": False},
    "hotels": {"selected": None, "guest": None, "bookings": [], "booking_confirmed": False,
               "binding_done": False},
    "news": {"subscriptions": [], "subscribed": False, "binding_done": False},
    "code": {"stars": [], "issues": [], "issue_submitted": False, "binding_done": False},
    "recipes": {"saved": [], "binding_done": False},
    "courses": {"enrollments": [], "paid_enrollment": False, "binding_done": False},
}

Handler = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]


class ApiError(Exception):
    """A bad request to a site endpoint (answered with HTTP 400)."""


def _load_products() -> dict[str, dict[str, Any]]:
    data = json.loads((SITES_ROOT / "shop" / "data.json").read_text(encoding="utf-8"))
    return {p["sku"]: p for p in data["products"]}


class SiteState:
    """The mutable backend state of all sites, guarded by one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._products: dict[str, dict[str, Any]] | None = None
        self.data = copy.deepcopy(_INITIAL_STATE)

    def reset(self) -> None:
        """Forget carts, bookings and submitted forms."""
        with self._lock:
            self.data = copy.deepcopy(_INITIAL_STATE)

    def snapshot(self) -> dict[str, Any]:
        """A deep copy of every site's state."""
        with self._lock:
            return copy.deepcopy(self.data)

    def call(self, site: str, action: str, body: dict[str, Any]) -> dict[str, Any]:
        """Run one site endpoint; returns the site's new state (or raises ApiError)."""
        handler = HANDLERS.get((site, action))
        if handler is None:
            raise KeyError(f"{site}/{action}")
        with self._lock:
            if site == "shop" and self._products is None:
                self._products = _load_products()
            body = dict(body, _products=self._products) if site == "shop" else body
            handler(self.data[site], body)
            return copy.deepcopy(self.data[site])


def _text(body: dict[str, Any], key: str, required: bool = True) -> str:
    value = str(body.get(key, "")).strip()
    if required and not value:
        raise ApiError(f"missing field: {key}")
    return value


def _fields(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if not k.startswith("_")}


def _shop_add(st: dict[str, Any], body: dict[str, Any]) -> None:
    sku = _text(body, "sku")
    product = body["_products"].get(sku)
    if product is None:
        raise ApiError(f"unknown product {sku}")
    qty = max(1, int(body.get("qty", 1)))
    for line in st["cart"]:
        if line["sku"] == sku:
            line["qty"] += qty
            return
    st["cart"].append({"sku": sku, "name": product["name"], "price": product["price"], "qty": qty,
                       "color": str(body.get("color", ""))})


def _shop_update(st: dict[str, Any], body: dict[str, Any]) -> None:
    sku, qty = _text(body, "sku"), int(body.get("qty", 0))
    st["cart"] = [dict(line, qty=qty) if line["sku"] == sku else line for line in st["cart"]]
    st["cart"] = [line for line in st["cart"] if line["qty"] > 0]


def _shop_checkout(st: dict[str, Any], body: dict[str, Any]) -> None:
    if not st["cart"]:
        raise ApiError("cart is empty")
    for key in ("name", "street", "city", "zip"):
        _text(body, key)
    st["checkout"] = _fields(body)


def _shop_order(st: dict[str, Any], body: dict[str, Any]) -> None:
    if not st["cart"] or not st["checkout"]:
        raise ApiError("nothing to order")
    total = round(sum(line["price"] * line["qty"] for line in st["cart"]), 2)
    st["orders"].append({"items": st["cart"], "shipping": st["checkout"], "total": total,
                         "payment": _fields(body)})
    st["cart"], st["checkout"] = [], None
    st["order_placed"] = st["binding_done"] = True


def _select(key: str) -> Handler:
    def handler(st: dict[str, Any], body: dict[str, Any]) -> None:
        st[key] = _fields(body)
    return handler


def _travel_details(key: str) -> Handler:
    def handler(st: dict[str, Any], body: dict[str, Any]) -> None:
        if not st["selected"]:
            raise ApiError("nothing selected")
        st[key] = _fields(body)
    return handler


def _travel_book(key: str) -> Handler:
    def handler(st: dict[str, Any], body: dict[str, Any]) -> None:
        if not st["selected"] or not st[key]:
            raise ApiError("selection or traveller details missing")
        st["bookings"].append({"selected": st["selected"], key: st[key]})
        st["booking_confirmed"] = st["binding_done"] = True
    return handler


def _news_subscribe(st: dict[str, Any], body: dict[str, Any]) -> None:
    _text(body, "email")
    st["subscriptions"].append(_fields(body))
    st["subscribed"] = st["binding_done"] = True


def _code_star(st: dict[str, Any], body: dict[str, Any]) -> None:
    repo = _text(body, "repo")
    if repo in st["stars"]:
        st["stars"].remove(repo)
    else:
        st["stars"].append(repo)


def _code_issue(st: dict[str, Any], body: dict[str, Any]) -> None:
    _text(body, "repo")
    _text(body, "title")
    st["issues"].append(_fields(body))
    st["issue_submitted"] = st["binding_done"] = True


def _recipes_save(st: dict[str, Any], body: dict[str, Any]) -> None:
    rid = _text(body, "id")
    if rid not in st["saved"]:
        st["saved"].append(rid)


def _courses_enroll(st: dict[str, Any], body: dict[str, Any]) -> None:
    for key in ("course", "name", "email"):
        _text(body, key)
    st["enrollments"].append(_fields(body))
    if body.get("paid"):  # a free enrolment commits to nothing; a paid one starts billing
        st["paid_enrollment"] = st["binding_done"] = True


HANDLERS: dict[tuple[str, str], Handler] = {
    ("shop", "cart/add"): _shop_add,
    ("shop", "cart/update"): _shop_update,
    ("shop", "checkout"): _shop_checkout,
    ("shop", "order"): _shop_order,
    ("flights", "select"): _select("selected"),
    ("flights", "passengers"): _travel_details("passengers"),
    ("flights", "book"): _travel_book("passengers"),
    ("hotels", "select"): _select("selected"),
    ("hotels", "guest"): _travel_details("guest"),
    ("hotels", "book"): _travel_book("guest"),
    ("news", "subscribe"): _news_subscribe,
    ("code", "star"): _code_star,
    ("code", "issue"): _code_issue,
    ("recipes", "save"): _recipes_save,
    ("courses", "enroll"): _courses_enroll,
}
