"""`python -m models.export.text_builder ARGS`: onnxruntime-genai's builder (same arguments)
that never holds the whole fp32 model in memory.

The builder's own int4 path serializes the whole fp32 graph into one in-memory ModelProto for
onnxruntime's quantizer (`Model.to_nbits`): at Fara-7B's size the export was killed by the
kernel at 21.8 GB on a 24 GB machine. Here, for this process only, `to_nbits` is swapped for
lazy per-weight quantization (models/export/stream_quant.py) whenever the builder's settings are
the ones it reproduces byte for byte. Loading is not the problem: transformers 5 already reads
safetensors weights as views of the memory-mapped files (page cache, measured: loading and
reading every weight of the 2-layer bench checkpoint added 3.1 GB of file pages and no private
memory). tests/models/test_stream_quant.py fails if a newer builder stops going through the
patch (the export would still work, with the old memory).
"""

from __future__ import annotations

import importlib
import runpy
import sys


def main(argv: list[str]) -> None:
    import onnxruntime_genai.models  # noqa: F401  (puts the builder's own folder on sys.path)

    from models.export import stream_quant

    # builder.py imports its classes as the top-level package `builders` (not through
    # onnxruntime_genai.models.builders, a second copy of the same classes): patch that one.
    base = importlib.import_module("builders.base")
    builders_own = base.Model.to_nbits

    def to_nbits(self):
        if stream_quant.supported(self):
            return stream_quant.quantize_lazily(self)
        return builders_own(self)

    base.Model.to_nbits = to_nbits
    sys.argv = ["onnxruntime_genai.models.builder", *argv]
    runpy.run_module("onnxruntime_genai.models.builder", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
