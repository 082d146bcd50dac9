"""`python -m models.export.text_builder ARGS`: onnxruntime-genai's builder (same arguments)
that never holds the whole model in memory.

Two patches, for this process only, kept in this one place:
- transformers' `safe_open` is swapped for the mapped one (models/export/mapped_weights.py):
  the checkpoint's tensors are views of its files instead of a private copy of every weight;
- the builder's `Model.to_nbits` (which serializes the whole fp32 graph into one ModelProto for
  onnxruntime's quantizer) is swapped for lazy per-weight quantization
  (models/export/stream_quant.py) whenever the builder's settings are the ones it reproduces.
Together they are what let a full-size Fara-7B export run on a 24 GB machine (the builder as it
is was killed by the kernel at 21.8 GB). Both are checked by tests that fail if a newer
transformers or builder stops going through them (tests/models/test_mapped_weights.py,
tests/models/test_stream_quant.py); the export itself would still work, with the old memory.
"""

from __future__ import annotations

import importlib
import runpy
import sys


def main(argv: list[str]) -> None:
    import onnxruntime_genai.models  # noqa: F401  (puts the builder's own folder on sys.path)
    import transformers.modeling_utils as modeling_utils

    # builder.py imports its classes as the top-level package `builders` (not through
    # onnxruntime_genai.models.builders, a second copy of the same classes): patch that one.
    base = importlib.import_module("builders.base")

    from models.export import mapped_weights, stream_quant

    modeling_utils.safe_open = mapped_weights.safe_open
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
