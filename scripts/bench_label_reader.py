"""Time and accuracy of the screen-label reader on rendered 1920x1080 screens.

    .venv/bin/python scripts/bench_label_reader.py --renders 12
    .venv/bin/python scripts/bench_label_reader.py --renders 12 --languages eng+deu
    .venv/bin/python scripts/bench_label_reader.py --renders 12 --engine cli   # tesseract CLI, per check
    python scripts/bench_label_reader.py --engine rapidocr  # in a venv with rapidocr_onnxruntime==1.4.4

Each render has 6-8 buttons in adjacent rows; every button's centre is one check. Prints the
median and 90th percentile seconds per check and how many labels were read exactly (case,
spacing and punctuation ignored; and with accents folded, as the gate compares). The engine's
one-off load is excluded (done before timing).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.screen_label import NullReader, ScreenLabelReader  # noqa: E402
from agent.screen_label_ocr import (  # noqa: E402
    DEFAULT_LANGUAGES,
    OcrLabelReader,
    _nearest_phrase,
)
from agent.tesseract import _parse_tsv  # noqa: E402
from tests.support.screen_label_scenes import render, same_label  # noqa: E402


def fold(text: str) -> str:
    """Accents removed, as the gate folds text before matching."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def cli_text_at(image, x: int, y: int, languages: str) -> str:
    """The tesseract command line on the same band (a process and a model load per check)."""
    box = (max(0, x - 220), max(0, y - 28), x + 221, y + 29)
    with tempfile.NamedTemporaryFile(suffix=".png") as f:
        image.crop(box).convert("L").save(f.name)
        out = subprocess.run(["tesseract", f.name, "-", "-l", languages, "--psm", "11", "tsv"],
                             capture_output=True, text=True, timeout=10).stdout
    return _nearest_phrase(_parse_tsv(out), x - box[0], y - box[1], 40)


def rapidocr_text_at(engine, image, x: int, y: int) -> str:
    """rapidocr-onnxruntime (PP-OCRv4 ONNX models inside its wheel) on the same band."""
    import numpy as np

    box = (max(0, x - 220), max(0, y - 28), x + 221, y + 29)
    result, _ = engine(np.asarray(image.crop(box).convert("RGB"))[:, :, ::-1].copy(), use_cls=False)
    px, py = x - box[0], y - box[1]

    def distance(item) -> float:
        xs, ys = [p[0] for p in item[0]], [p[1] for p in item[0]]
        return max(min(xs) - px, 0, px - max(xs)) + max(min(ys) - py, 0, py - max(ys))

    return min(result, key=distance)[1] if result else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--renders", type=int, default=12)
    parser.add_argument("--languages", default=DEFAULT_LANGUAGES)
    parser.add_argument("--engine", choices=("reader", "cli", "rapidocr", "null"), default="reader")
    parser.add_argument("--show-misses", action="store_true")
    args = parser.parse_args()
    ocr = OcrLabelReader(args.languages)
    reader = ScreenLabelReader(None, ocr, time_limit=5.0) if args.engine == "reader" else NullReader()
    if args.engine == "reader":
        ocr.engine()  # load once, outside the timing
    if args.engine == "rapidocr":  # not a dependency: pip install rapidocr_onnxruntime==1.4.4
        from rapidocr_onnxruntime import RapidOCR

        # Its default detector input (shorter side 736) blows a band up to ~5700x736 pixels.
        rapid = RapidOCR(det_limit_side_len=480, det_limit_type="max", intra_op_num_threads=1,
                         inter_op_num_threads=1)
    times, right, folded, misses = [], 0, 0, []
    for seed in range(args.renders):
        scene = render(seed)
        for button in scene.buttons:
            x, y = button.center
            start = time.perf_counter()
            if args.engine == "cli":
                text = cli_text_at(scene.image, x, y, args.languages)
            elif args.engine == "rapidocr":
                text = rapidocr_text_at(rapid, scene.image, x, y)
            else:
                text = reader.read(scene.image, x, y).text
            times.append(time.perf_counter() - start)
            right += same_label(text, button.label)
            folded += same_label(fold(text), fold(button.label))
            if not same_label(text, button.label):
                misses.append(f"  seed {seed} {scene.theme} {scene.font} {scene.size}px: "
                              f"{button.label!r} read as {text!r}")
    times.sort()
    p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
    print(f"engine={args.engine} languages={args.languages} checks={len(times)} "
          f"median={statistics.median(times) * 1000:.1f} ms p90={p90 * 1000:.1f} ms "
          f"max={times[-1] * 1000:.1f} ms exact={right}/{len(times)} accents-folded={folded}/{len(times)}")
    if args.show_misses:
        print("\n".join(misses))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
