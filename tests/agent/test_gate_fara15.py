"""The gate judges Fara1.5's new actions: clicks and drags by the label under them, typing by field."""

from __future__ import annotations

import pytest
from PIL import Image

from agent.actions import (
    AskUser,
    DoubleClick,
    Drag,
    HScroll,
    ReadPage,
    RightClick,
    TripleClick,
    TypeText,
)
from agent.safety import ConfirmRequest, Decision, Gate
from agent.screen_label import TargetLabel

IMAGE = Image.new("RGB", (200, 200), "white")


class LabelAt:
    """Reads `labels[(x, y)]` (or nothing) at the point the gate asks about."""

    def __init__(self, labels: dict[tuple[int, int], TargetLabel]) -> None:
        self.labels, self.asked_at = labels, []

    def read(self, image, x, y):
        self.asked_at.append((x, y))
        return self.labels.get((x, y), TargetLabel(""))


def gate_with(labels: dict) -> tuple[Gate, list[ConfirmRequest], LabelAt]:
    asked: list[ConfirmRequest] = []

    def ask(request: ConfirmRequest) -> Decision:
        asked.append(request)
        return Decision.DENY

    reader = LabelAt(labels)
    return Gate("risky", ask=ask, reader=reader, platform="linux"), asked, reader


@pytest.mark.parametrize("action", [RightClick((50, 60)), DoubleClick((50, 60)), TripleClick((50, 60)),
                                    Drag((50, 60), (5, 5))])
def test_a_click_or_drag_onto_a_risky_label_asks(action) -> None:
    gate, asked, reader = gate_with({(50, 60): TargetLabel("Delete account", "push button", "ocr")})
    verdict = gate.check(action, "Doing it.", screenshot=IMAGE, target=action.target)
    assert not verdict.allowed and verdict.asked
    assert any("Delete account" in r for r in asked[0].reasons)
    assert reader.asked_at == [(50, 60)]  # a drag is judged where it drops


@pytest.mark.parametrize("action", [RightClick((50, 60)), Drag((50, 60))])
def test_a_harmless_label_lets_them_through(action) -> None:
    gate, asked, _ = gate_with({(50, 60): TargetLabel("Photos", "push button", "ocr")})
    assert gate.check(action, "Open the menu.", screenshot=IMAGE, target=action.target).allowed
    assert asked == []


def test_risky_thoughts_ask_for_a_right_click_too() -> None:
    gate, asked, _ = gate_with({})
    verdict = gate.check(RightClick((5, 5)), "Now I will delete the account.", screenshot=IMAGE,
                         target=(5, 5))
    assert not verdict.allowed and "thoughts" in asked[0].reasons[0]


def test_typing_with_delete_existing_text_into_a_payment_field_asks() -> None:
    gate, asked, _ = gate_with({(40, 40): TargetLabel("Card number", "entry", "ocr")})
    action = TypeText("", (40, 40), press_enter=False, delete_existing_text=True)
    verdict = gate.check(action, "Clear the field.", screenshot=IMAGE, target=(40, 40))
    assert not verdict.allowed
    assert any("Card number" in r for r in asked[0].reasons)


def test_a_right_click_sets_the_focus_for_a_later_typing() -> None:
    gate, _, reader = gate_with({})
    gate.check(RightClick((30, 30)), "Open the field's menu.", screenshot=IMAGE, target=(30, 30))
    gate.check(TypeText("hello", press_enter=False), "Type.", screenshot=IMAGE, target=None)
    assert reader.asked_at == [(30, 30), (30, 30)]


@pytest.mark.parametrize("action", [AskUser("Delete the account?"), ReadPage("What is the total to pay?")])
def test_questions_send_no_input_and_pass(action) -> None:
    gate, asked, _ = gate_with({})
    assert gate.check(action, "I must ask about the payment.", screenshot=IMAGE).allowed
    assert asked == []


def test_hscroll_is_not_a_click() -> None:
    gate, _, _ = gate_with({(5, 5): TargetLabel("Delete", "push button", "ocr")})
    assert gate.check(HScroll(10.0, (5, 5)), "Scroll right.", screenshot=IMAGE, target=(5, 5)).allowed
