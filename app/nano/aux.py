"""Training-only auxiliary targets for Deskhand Nano: dense supervision of what is where.

The probe's plain run (reply loss only) learned the tool-call format and nothing about the
screen in 35 CPU-minutes: one example gives ~6 coordinate-digit targets, and nothing tells the
vision tower which of ~100 image tokens mattered. Two heads add targets on every screen; both
are dropped after training (the exported model is the unchanged family architecture):

- **reading**: from each image token's hidden state after `READ_LAYER` decoder layers, which
  label word (or none) covers that cell. The screenshot comes before the task text in the
  prompt, so an image token cannot know the task; what it can carry is which word is there.
- **pointing**: from the hidden state of the reply token just before the first coordinate digit,
  a bilinear score against every image token's final hidden state, trained towards the cells the
  target button covers. That is the match the model's own attention must make to copy the
  target's position into the digits.
- **where**: from each image token's hidden state entering the last decoder layer, its own row
  and column. What attention copies is values, not positions: the digits can only be read from
  a token whose state says where it is.
- **attend**: one head of the model's own last full-attention layer, at every position that
  predicts a coordinate digit, is trained to put its weight on the target's cells. With only
  the reply loss the model settled on one constant click (measured: predicted x and y had zero
  spread after 30 CPU-minutes) while the pointing head above found the button: the query, the
  key and the value path must line up at once before any digit improves, and this gives the
  first two a direct signal.
- **centre**: from each image token the target covers (the input of the last decoder layer, what
  that attention reads), where the target's centre is, in `CENTRE_BINS` bins per axis of the
  image. On whole screens a button is a quarter of a 32-px cell high (a default Qt button on a
  1280x800 screen is 9 model pixels): the cell's row and column (the where head) place a click
  up to 16 pixels off, so the token must also say where inside it the button is. Measured:
  stage d with the four heads above reached 0 % of held-out whole-screen clicks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

if TYPE_CHECKING:
    from tokenizers import Tokenizer

READ_LAYER = 2  # hidden_states index: after two decoder layers
WHERE_LAYER = -2  # hidden_states index: the input of the last decoder layer
MAX_CELLS = 64  # rows or columns of image cells a where-head can name
IGNORE = -100  # label of tokens without loss (prompt, padding)
NONE = 0        # the reading class of a cell without a label
UNKNOWN = -100  # a cell whose word is not known (a recorded web page): no reading loss
COVER = 0.2     # a cell belongs to a button when the button covers this share of it
CENTRE_BINS = 128  # per axis: 4 model pixels on a 512-wide image, 8 units of the 1000-grid
NO_CENTRE = -1     # the centre target of a cell the target does not cover


class AuxHeads(nn.Module):
    def __init__(self, hidden: int, words: int, key: int = 64, tied: bool = False,
                 balanced: bool = False) -> None:
        super().__init__()
        # Balanced reading (--read-balanced): the reading loss is the mean of the labelled
        # cells' loss and the unlabelled cells', not one mean over all cells. Measured: with
        # one mean (~9 in 10 cells unlabelled) a run's read head named the word of 3-4 % of
        # the labelled cells after 300 steps on two-button screens: the cells never learned
        # which word they show, so no attention could find the named button by its word.
        self.balanced = balanced
        # Tied reading (--read-tied): a cell's word is scored against the model's own embedding
        # of that word as the task text spells it, not by a classifier of its own, so what a
        # cell says it shows lives in the space the task's words come in. The hope (a probe,
        # README): the last layer's match of task word to cell is then one map for every word
        # rather than a lookup learned word by word.
        self.tied = tied
        if tied:
            self.read_proj = nn.Linear(hidden, hidden)
            self.read_none = nn.Parameter(torch.zeros(1, hidden))  # a cell without a label
        else:
            self.read = nn.Linear(hidden, words + 1)
        self.query = nn.Linear(hidden, key)
        self.key = nn.Linear(hidden, key)
        self.row = nn.Linear(hidden, MAX_CELLS)
        self.col = nn.Linear(hidden, MAX_CELLS)
        self.centre_x = nn.Linear(hidden, CENTRE_BINS)
        self.centre_y = nn.Linear(hidden, CENTRE_BINS)

    def read_loss(self, cells: torch.Tensor, labels: torch.Tensor,
                  words: torch.Tensor | None) -> torch.Tensor:
        """Cross-entropy of the cells' word classes: one mean, or (balanced) the mean of the
        labelled cells' mean and the unlabelled cells' mean (either alone when the other is
        absent)."""
        logits = self.read_logits(cells, words)
        if not self.balanced:
            return F.cross_entropy(logits, labels, reduction="none").mean()
        return balanced_cross_entropy(logits, labels)

    def read_logits(self, cells: torch.Tensor, words: torch.Tensor | None) -> torch.Tensor:
        """Each cell's scores over NONE and the words (classes as in `read_labels`)."""
        if not self.tied:
            return self.read(cells)
        if words is None:
            raise ValueError("tied reading needs the words' embeddings (word_table)")
        return self.read_proj(cells) @ torch.cat([self.read_none, words]).T

    def centre_loss(self, hidden_states: tuple[torch.Tensor, ...], image_mask: torch.Tensor,
                    centre_x: torch.Tensor, centre_y: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the target's centre bins (`centre_x`, `centre_y`: per image token of
        the batch in order, NO_CENTRE where the target does not cover it) read from each covered
        token; 0 for a batch without targets (only steps after a click)."""
        at = hidden_states[WHERE_LAYER][image_mask]
        covered = centre_x != NO_CENTRE
        if not bool(covered.any()):
            return at.sum() * 0
        return (F.cross_entropy(self.centre_x(at[covered]), centre_x[covered])
                + F.cross_entropy(self.centre_y(at[covered]), centre_y[covered])) / 2

    def losses(self, hidden_states: tuple[torch.Tensor, ...], image_mask: torch.Tensor,
               read_labels: torch.Tensor, target_cells: torch.Tensor,
               pointer_at: torch.Tensor, cell_rows: torch.Tensor, cell_cols: torch.Tensor,
               words: torch.Tensor | None = None,
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reading loss, pointing loss, where loss), each a mean over the batch.

        `image_mask` [B, L] marks image tokens; `read_labels` and `target_cells` list, for all
        image tokens of the batch in order, the word class and whether the target covers it;
        `pointer_at` [B] is the position of the token before each reply's first coordinate digit;
        `words` [words, hidden] the label words' embeddings (`word_table`), for tied reading.
        """
        layer = hidden_states[min(READ_LAYER, len(hidden_states) - 1)]
        cells = layer[image_mask]
        known = read_labels >= 0  # UNKNOWN: a screen whose words are not known (solver steps)
        read = (self.read_loss(cells[known], read_labels[known], words) if bool(known.any())
                else cells.sum() * 0)
        last = hidden_states[-1]
        keys = self.key(last[image_mask])  # [all image tokens, key]
        counts = image_mask.sum(dim=1).tolist()
        rows = torch.arange(len(pointer_at), device=pointer_at.device)
        queries = self.query(last[rows, pointer_at.clamp(min=0)])
        point, start = [], 0
        for row, n in enumerate(counts):
            target = target_cells[start:start + n].float()
            if pointer_at[row] >= 0 and target.sum() > 0:  # else: nothing to point at
                scores = keys[start:start + n] @ queries[row] / keys.shape[-1] ** 0.5
                point.append(-(F.log_softmax(scores, dim=0) * target / target.sum()).sum())
            start += n
        at = hidden_states[WHERE_LAYER][image_mask]
        where = (F.cross_entropy(self.row(at), cell_rows) + F.cross_entropy(self.col(at), cell_cols)) / 2
        point_loss = torch.stack(point).mean() if point else keys.sum() * 0
        return read, point_loss, where


def balanced_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The mean of the labelled cells' mean cross-entropy and the unlabelled (NONE) cells' mean,
    either alone when the other is absent: ~9 in 10 cells show no word, and one mean over all
    would let them drown the reading (--read-balanced; scripts/probe_reading.py)."""
    losses = F.cross_entropy(logits, labels, reduction="none")
    labelled = labels != NONE
    parts = [losses[m].mean() for m in (labelled, ~labelled) if bool(m.any())]
    return torch.stack(parts).mean()


def word_tokens(tokenizer: Tokenizer, words: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Each word's token ids as a task spells it (after a space: "click the OK button"),
    padded to the longest: (ids [words, T], mask [words, T])."""
    spelled = [tokenizer.encode(" " + w, add_special_tokens=False).ids for w in words]
    longest = max(len(t) for t in spelled)
    ids = torch.tensor([t + [0] * (longest - len(t)) for t in spelled])
    mask = torch.tensor([[1.0] * len(t) + [0.0] * (longest - len(t)) for t in spelled])
    return ids, mask


def word_table(embedding: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The words' embeddings [words, hidden]: the mean of each word's token embeddings in the
    model's input embedding matrix `embedding` (trained with it: gradients reach both sides)."""
    return (embedding[ids] * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)


def attend_loss(attention: torch.Tensor, image_mask: torch.Tensor, target_cells: torch.Tensor,
                digit_at: list[list[int]], head: int = 0) -> torch.Tensor:
    """-log of the weight head `head` of `attention` [B, heads, L, L] puts on the target's cells,
    averaged over each example's digit-predicting positions `digit_at` (examples without
    digits, the step after a click, add nothing)."""
    losses, start = [], 0
    for row, positions in enumerate(digit_at):
        image_pos = image_mask[row].nonzero().squeeze(-1)
        cells = target_cells[start:start + len(image_pos)]
        start += len(image_pos)
        if not positions or not bool(cells.any()):
            continue
        weights = attention[row, head][torch.tensor(positions, device=attention.device)][:, image_pos[cells]]
        losses.append(-torch.log(weights.sum(dim=-1) + 1e-6).mean())
    return torch.stack(losses).mean() if losses else attention.sum() * 0


def cell_targets(boxes: list[tuple[int, int, int, int]], words: list[int], target: int,
                 rows: int, cols: int, unit: int) -> tuple[list[int], list[bool]]:
    """Per image cell in raster order: the word class covering it and whether it is the target's.

    `boxes` are (left, top, right, bottom) in model pixels, `words` their classes (1-based),
    `target` the index of the named button; a cell is a `unit`-pixel square.
    """
    labels, target_cells = [], []
    for r in range(rows):
        for c in range(cols):
            best, best_area, on_target = NONE, 0.0, False
            for i, (left, top, right, bottom) in enumerate(boxes):
                w = min(right, (c + 1) * unit) - max(left, c * unit)
                h = min(bottom, (r + 1) * unit) - max(top, r * unit)
                area = max(0, w) * max(0, h) / unit**2
                if area >= COVER and area > best_area:
                    best, best_area = words[i], area
                on_target |= i == target and area > 0
            labels.append(best)
            target_cells.append(on_target)
    return labels, target_cells


def centre_bins(box: tuple[int, int, int, int], width: int, height: int) -> tuple[int, int]:
    """The (x, y) bins of a box's centre on a `width` x `height` image."""
    left, top, right, bottom = box
    x, y = (left + right) / 2, (top + bottom) / 2
    return (min(CENTRE_BINS - 1, int(x * CENTRE_BINS / width)),
            min(CENTRE_BINS - 1, int(y * CENTRE_BINS / height)))


def reply_loss(logits: torch.Tensor, labels: torch.Tensor, digit_ids: torch.Tensor,
               digit_weight: float) -> torch.Tensor:
    """Mean next-token loss over reply tokens (labels other than IGNORE), the tokens in
    `digit_ids` weighted by `digit_weight`; at 1 it is the model's own loss."""
    logits, labels = logits[:, :-1].float(), labels[:, 1:]
    per_token = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                  labels.reshape(-1), ignore_index=IGNORE,
                                                  reduction="none")
    labels = labels.reshape(-1)
    weights = (labels != IGNORE).float()
    weights[torch.isin(labels, digit_ids)] *= digit_weight
    return (per_token * weights).sum() / weights.sum()
