"""Probe for issue 13: do onnxruntime's CPU kernels exist for com.microsoft LinearAttention
(gated delta rule) and CausalConvWithState, and do they match a NumPy reference?

Run: .venv/bin/python scripts/probe_linear_attention.py
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper

B, T, H, DK, DV = 1, 7, 2, 8, 8
OPSETS = [helper.make_opsetid("", 21), helper.make_opsetid("com.microsoft", 1)]
rng = np.random.default_rng(0)


def _l2(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _io(name: str, shape: tuple[int, ...] | None) -> helper.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def gated_delta_reference(q, k, v, g, beta, state):
    """S_t = e^g S + beta k (v - e^g S^T k); o_t = q S_t / sqrt(d_k), token by token."""
    state = state.copy()
    out = np.zeros((B, T, H, DV), np.float32)
    for t in range(T):
        for h in range(H):
            decayed = np.exp(g[0, t, h]) * state[0, h]
            state[0, h] = decayed + beta[0, t, h] * np.outer(k[0, t, h], v[0, t, h] - decayed.T @ k[0, t, h])
            out[0, t, h] = DK ** -0.5 * (q[0, t, h] @ state[0, h])
    return out, state


def probe_linear_attention() -> str:
    q = rng.standard_normal((B, T, H, DK)).astype(np.float32)
    k = _l2(rng.standard_normal((B, T, H, DK))).astype(np.float32)
    v = rng.standard_normal((B, T, H, DV)).astype(np.float32)
    g = (-np.abs(rng.standard_normal((B, T, H))) * 0.3).astype(np.float32)
    beta = (1 / (1 + np.exp(-rng.standard_normal((B, T, H))))).astype(np.float32)
    s0 = (rng.standard_normal((B, H, DK, DV)) * 0.1).astype(np.float32)
    node = helper.make_node("LinearAttention", ["q", "k", "v", "s", "g", "b"], ["o", "ps"],
                            domain="com.microsoft", q_num_heads=H, kv_num_heads=H,
                            update_rule="gated_delta")
    inputs = [_io("q", (B, T, H * DK)), _io("k", (B, T, H * DK)), _io("v", (B, T, H * DV)),
              _io("s", (B, H, DK, DV)), _io("g", (B, T, H)), _io("b", (B, T, H))]
    model = helper.make_model(helper.make_graph([node], "la", inputs, [_io("o", None), _io("ps", None)]),
                              opset_imports=OPSETS)
    try:
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        out, state = sess.run(None, {"q": q.reshape(B, T, -1), "k": k.reshape(B, T, -1),
                                     "v": v.reshape(B, T, -1), "s": s0, "g": g, "b": beta})
    except Exception as exc:
        return f"LinearAttention CPU: no kernel ({type(exc).__name__}: {str(exc)[:200]})"
    ref_out, ref_state = gated_delta_reference(q, k, v, g, beta, s0)
    return (f"LinearAttention CPU: ok, max|out-ref| {np.abs(out.reshape(ref_out.shape) - ref_out).max():.2e},"
            f" max|state-ref| {np.abs(state - ref_state).max():.2e}")


def probe_causal_conv() -> str:
    channels, width = 6, 4
    x = rng.standard_normal((B, channels, T)).astype(np.float32)
    w = rng.standard_normal((channels, 1, width)).astype(np.float32)
    bias = rng.standard_normal(channels).astype(np.float32)
    past = rng.standard_normal((B, channels, width - 1)).astype(np.float32)
    node = helper.make_node("CausalConvWithState", ["x", "w", "bias", "past"], ["y", "present"],
                            domain="com.microsoft", activation="silu")
    inputs = [_io(n, a.shape) for n, a in (("x", x), ("w", w), ("bias", bias), ("past", past))]
    model = helper.make_model(helper.make_graph([node], "cc", inputs, [_io("y", None), _io("present", None)]),
                              opset_imports=OPSETS)
    try:
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        y, present = sess.run(None, {"x": x, "w": w, "bias": bias, "past": past})
    except Exception as exc:
        return f"CausalConvWithState CPU: no kernel ({type(exc).__name__}: {str(exc)[:200]})"
    full = np.concatenate([past, x], axis=2)
    ref = np.stack([(full[:, :, t:t + width] * w[:, 0][None]).sum(-1) + bias for t in range(T)], axis=2)
    ref = ref / (1 + np.exp(-ref))
    return (f"CausalConvWithState CPU: ok, max|y-ref| {np.abs(y - ref).max():.2e},"
            f" max|state-ref| {np.abs(present - full[:, :, -(width - 1):]).max():.2e}")


if __name__ == "__main__":
    print(f"onnxruntime {ort.__version__}")
    print(probe_linear_attention())
    print(probe_causal_conv())
