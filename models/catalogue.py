"""The models Deskhand knows how to get, by family: sizes, reported scores, and what works today.

One table for the first-run dialog and `deskhand models` alike. Scores are the ones the Fara-1.5
paper reports (`SCORES_SOURCE`), not measured here. A model whose export does not yet run end to
end says so (`ready` False) and is never the recommended default.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.registry import human_size

SCORES_SOURCE = ("Fara-1.5: Scalable Learning Environments for Computer Use Agents "
                 "(Microsoft, 2026-06)")


@dataclass(frozen=True)
class CatalogueEntry:
    """One model Deskhand can run (or will, once its export works)."""

    name: str
    family: str                 # the prompt family (agent.prompts.FAMILIES)
    parameters: str             # as the model card says it
    download_bytes: int         # the int4 ONNX folder on disk
    size_is_estimate: bool      # True: no published build yet; estimated from the parameters
    webvoyager: float           # success rate in %, as reported (SCORES_SOURCE)
    online_mind2web: float
    ready: bool                 # export -> runtime -> loop works end to end today
    note: str = ""

    def size_text(self) -> str:
        return ("about " if self.size_is_estimate else "") + human_size(self.download_bytes)

    def scores_text(self) -> str:
        return f"WebVoyager {self.webvoyager:.1f} %, Online-Mind2Web {self.online_mind2web:.1f} %"

    def summary(self) -> str:
        """One line for a list: name, size, reported scores, and whether it runs yet."""
        status = "" if self.ready else " — export in progress: Deskhand cannot run it yet"
        return (f"{self.name} ({self.parameters}, {self.size_text()}): {self.scores_text()}"
                f"{status}")


CATALOGUE: tuple[CatalogueEntry, ...] = (
    CatalogueEntry("Fara-7B", "fara", "7B (Qwen2.5-VL)", 5_000_000_000, False, 73.5, 34.1, True,
                   "the published int4 ONNX build (onnx-community/Fara-7B-Onnx)"),
    # Sizes: ~0.55 bytes per parameter at int4 with an fp16 vision tower, like Fara-7B's build.
    CatalogueEntry("Fara1.5-4B", "fara15", "4B (Qwen3.5)", 2_500_000_000, True, 80.8, 57.0, False,
                   "better than Fara-7B at about half its compute; the recommended default "
                   "once its export works"),
    CatalogueEntry("Fara1.5-9B", "fara15", "9B (Qwen3.5)", 5_300_000_000, True, 86.6, 63.4, False,
                   "the strongest that fits a well-equipped desktop"),
)


def recommended() -> CatalogueEntry:
    """The model to suggest first: the best-scoring one that runs end to end today."""
    return max((e for e in CATALOGUE if e.ready), key=lambda e: e.webvoyager)


def entry(name: str) -> CatalogueEntry:
    """The catalogue entry called `name` (KeyError if none)."""
    for item in CATALOGUE:
        if item.name == name:
            return item
    raise KeyError(name)
