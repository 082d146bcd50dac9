"""Block-wise weight-only quantization (int4 / int8 MatMulNBits) of an exported graph."""

from __future__ import annotations

from pathlib import Path


def quantize_matmuls(path: Path, bits: int, block_size: int = 128) -> Path:
    """Rewrite every constant-weight MatMul in `path` as MatMulNBits with `bits`-bit weights."""
    import logging

    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    # The quantizer logs one INFO line per node; an export bar is enough progress.
    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.WARNING)

    model = onnx.load(str(path))
    # Accuracy level 4 lets the CPU kernel use int8 activations, as Microsoft's Fara recipe does.
    quantizer = MatMulNBitsQuantizer(model, bits=bits, block_size=block_size, is_symmetric=True,
                                     accuracy_level=4)
    quantizer.process()
    data = path.with_name(path.name + ".data")
    if data.exists():
        data.unlink()
    quantizer.model.save_model_to_file(str(path), use_external_data_format=True)
    return path
