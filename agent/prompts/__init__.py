"""Model families: how a family's model is prompted and how its history is kept."""

from agent.prompts.fara import FaraFamily, Turn

__all__ = ["FaraFamily", "Turn", "get_family"]


def get_family(name: str = "fara") -> FaraFamily:
    """The prompt family by name (only `fara` so far)."""
    if name != "fara":
        raise ValueError(f"unknown model family {name!r}; known: fara")
    return FaraFamily.load()
