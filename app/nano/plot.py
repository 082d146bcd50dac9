"""The learning curve of a Nano run as a PNG drawn with PIL (no plotting library needed).

Top panel: held-out hit rates (0..1) against training CPU minutes, with the chance level dashed;
bottom panel: the mean training loss at each evaluation.
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageDraw

W, H, MARGIN = 720, 480, 48
COLOURS = {"heldout": (31, 119, 180), "heldout_words": (214, 39, 40), "loss": (44, 160, 44)}


def draw_curve(metrics: Path, out: Path) -> None:
    records = [json.loads(line) for line in metrics.read_text(encoding="utf-8").splitlines() if line]
    evals = [r for r in records if r.get("kind") == "eval"]
    start = next((r for r in records if r.get("kind") == "start"), {})
    image = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(image)
    title = f"{start.get('family', '?')}  {start.get('params', 0) / 1e6:.2f} M params"
    draw.text((MARGIN, 8), title + "   hit rate (blue: held-out layouts, red: held-out words)",
              fill="black")
    if not evals:
        image.save(out)
        return
    xmax = max(max(r["train_cpu_min"] for r in evals), 1e-3)
    top = (MARGIN, 28, W - 16, H // 2 + 20)
    bottom = (MARGIN, H // 2 + 48, W - 16, H - 28)
    _axes(draw, top, "1.0", "0")
    for split in ("heldout", "heldout_words"):
        level = (start.get("chance") or {}).get(split)
        if level is not None:
            _dashed(draw, top, level, COLOURS[split])
        _line(draw, top, xmax, 1.0, [(r["train_cpu_min"], r[split]) for r in evals], COLOURS[split])
    losses = [(r["train_cpu_min"], r["loss"]) for r in evals if r.get("loss") is not None]
    ymax = max((v for _, v in losses), default=1.0) or 1.0
    _axes(draw, bottom, f"{ymax:.2f}", "0")
    draw.text((bottom[0] + 4, bottom[1] - 14), "mean training loss", fill=COLOURS["loss"])
    _line(draw, bottom, xmax, ymax, losses, COLOURS["loss"])
    draw.text((W // 2 - 60, H - 16), f"training CPU minutes (0 .. {xmax:.1f})", fill="black")
    image.save(out)


def _axes(draw: ImageDraw.ImageDraw, box, ytop: str, ybottom: str) -> None:
    y0, y1 = box[1], box[3]
    draw.rectangle(box, outline="black")
    draw.text((4, y0), ytop, fill="black")
    draw.text((4, y1 - 10), ybottom, fill="black")


def _point(box, xmax: float, ymax: float, x: float, y: float) -> tuple[float, float]:
    x0, y0, x1, y1 = box
    return x0 + (x1 - x0) * x / xmax, y1 - (y1 - y0) * min(max(y / ymax, 0.0), 1.0)


def _line(draw: ImageDraw.ImageDraw, box, xmax: float, ymax: float, points, colour) -> None:
    xy = [_point(box, xmax, ymax, x, y) for x, y in points]
    if len(xy) > 1:
        draw.line(xy, fill=colour, width=2)
    for x, y in xy:
        draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=colour)


def _dashed(draw: ImageDraw.ImageDraw, box, level: float, colour) -> None:
    x0, _, x1, _ = box
    _, y = _point(box, 1.0, 1.0, 0.0, level)
    for x in range(int(x0), int(x1), 12):
        draw.line((x, y, min(x + 6, x1), y), fill=colour, width=1)
