"""The models Deskhand knows how to get, by family: sizes, reported scores, and what works today.

One table for the first-run dialog and `deskhand models` alike. Scores are the ones the Fara-1.5
paper reports (`SCORES_SOURCE`), not measured here. A model whose export does not yet run end to
end says so (`ready` False) and is never the recommended default.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from pathlib import Path

from models.registry import ModelError, human_size

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
    hub_repo: str = ""          # the official checkpoint `deskhand models get` downloads
    checkpoint_bytes: int = 0   # its safetensors on disk (the download)

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
    # No downloadable ONNX build is published: the bf16 checkpoint is exported on the machine.
    CatalogueEntry("Fara-7B", "fara", "7B (Qwen2.5-VL)", 5_000_000_000, True, 73.5, 34.1, True,
                   "downloaded from microsoft/Fara-7B (bf16, about 16.6 GB) and exported to "
                   "int4 ONNX on this machine", "microsoft/Fara-7B", 16_600_000_000),
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


# A JSON list of extra entries (tests' fake hub, a private mirror); never part of CATALOGUE.
EXTRA_ENV = "DESKHAND_CATALOGUE_EXTRA"


def entries() -> tuple[CatalogueEntry, ...]:
    """The product catalogue plus the entries of the file named by $DESKHAND_CATALOGUE_EXTRA."""
    path = os.environ.get(EXTRA_ENV)
    if not path:
        return CATALOGUE
    known = {f.name for f in fields(CatalogueEntry)}
    try:
        items = json.loads(Path(path).read_text(encoding="utf-8"))
        extra = tuple(CatalogueEntry(**{k: v for k, v in item.items() if k in known})
                      for item in items)
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise ModelError(f"{EXTRA_ENV}={path} is not a list of catalogue entries ({exc})"
                         ) from exc
    return CATALOGUE + extra


def entry(name: str) -> CatalogueEntry:
    """The catalogue entry called `name`, case ignored ("fara-7b"); KeyError if none."""
    for item in entries():
        if item.name.casefold() == name.casefold():
            return item
    raise KeyError(name)
