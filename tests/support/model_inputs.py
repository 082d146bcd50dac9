"""Inputs for the model tests: reproducible screenshots and Fara-like conversations.

The tiny checkpoint and its exports these are fed to are session fixtures in tests/conftest.py.
"""

from __future__ import annotations

import numpy as np

# The two screenshot sizes the parity tests use: the Fara reference viewport and a smaller one.
SIZES = [(1428, 896), (1036, 588)]


def case_id(count: int, size) -> str:
    """A readable test id such as '3x1428x896' or '2xmixed'."""
    return f"{count}x{size}" if isinstance(size, str) else f"{count}x{size[0]}x{size[1]}"


def noise_images(count: int, size: tuple[int, int], seed: int) -> list:
    """`count` distinct random-noise RGB images of `size`, reproducible from `seed`."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    w, h = size
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for _ in range(count)]


def agent_messages(n_images: int) -> list[dict]:
    """A Fara-like conversation with `n_images` screenshots, one per user turn."""
    messages: list[dict] = [{"role": "system", "content": [
        {"type": "text", "text": "You are a web automation agent. The screen's resolution is "
                                 "1428x896. Stop at critical points."}]}]
    for i in range(n_images):
        text = "Find a recipe and open it." if i == 0 else "Current URL: http://localhost/. Next?"
        messages.append({"role": "user", "content": [{"type": "image"}, {"type": "text",
                                                                          "text": text}]})
        if i < n_images - 1:
            messages.append({"role": "assistant", "content": [{"type": "text", "text":
                '<tool_call>\n{"name": "computer_use", "arguments": {"action": "left_click", '
                f'"coordinate": [{100 + i}, 200]}}}}\n</tool_call>'}]})
    return messages
