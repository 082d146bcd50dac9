"""ONNX Runtime sessions for Deskhand's models: provider choice, thread counts, session options."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from agent.inference.base import BackendError
from agent.options import PROVIDERS

_ORT_NAMES = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
              "dml": "DmlExecutionProvider"}
EXTRA = {"cpu": "deskhand[onnx]", "cuda": "deskhand[cuda]", "dml": "deskhand[directml]"}


def import_ort():
    """onnxruntime, or a BackendError naming the extra to install."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise BackendError(
            "the ONNX backend needs onnxruntime: pip install 'deskhand[onnx]' "
            "(or deskhand[cuda] / deskhand[directml] for a GPU)"
        ) from exc
    return ort


def choose_provider(requested: str, available: list[str]) -> str:
    """Resolve "auto" to CUDA when usable, DirectML on Windows, else CPU; check explicit ones.

    `available` is `onnxruntime.get_available_providers()`.
    """
    if requested not in PROVIDERS:
        raise BackendError(f"unknown provider {requested!r}; choose one of {', '.join(PROVIDERS)}")
    cuda = _ORT_NAMES["cuda"] in available
    dml = sys.platform == "win32" and _ORT_NAMES["dml"] in available
    if requested == "auto":
        return "cuda" if cuda else "dml" if dml else "cpu"
    if requested == "cuda" and not cuda:
        raise BackendError("CUDA is not usable here: install deskhand[cuda] and an NVIDIA driver, "
                           "or choose the cpu provider")
    if requested == "dml" and not dml:
        raise BackendError("DirectML is not usable here (Windows only, deskhand[directml]); "
                           "choose the cpu provider")
    return requested


def physical_cores() -> int:
    """Cores this process may run on, counting SMT siblings once.

    Compute-bound GEMMs gain nothing from a second hyper-thread on the same core and lose to
    the contention, so ONNX Runtime gets one thread per physical core.
    """
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        allowed = list(range(os.cpu_count() or 1))
    cores = set()
    for cpu in allowed:
        base = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add((base / "physical_package_id").read_text().strip() + ":"
                      + (base / "core_id").read_text().strip())
        except OSError:
            cores.add(str(cpu))
    return max(1, len(cores))


def thread_count() -> int:
    """Intra-op threads: DESKHAND_THREADS if set, else one per physical core."""
    value = os.environ.get("DESKHAND_THREADS", "").strip()
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            raise BackendError(f"DESKHAND_THREADS must be a whole number, not {value!r}") from None
    return physical_cores()


_shared_arena = False


def _share_cpu_arena(ort) -> None:
    """One CPU memory arena for all of the process's sessions, grown only as far as asked.

    Vision, embedding and decoder never run at the same time, so with one arena their
    transient tensors reuse the same memory instead of each session keeping its own peak.
    """
    global _shared_arena
    if _shared_arena:
        return
    info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0,
                             ort.OrtMemType.DEFAULT)
    ort.create_and_register_allocator(info, ort.OrtArenaCfg({"arena_extend_strategy": 1}))
    _shared_arena = True


def make_session(path: Path, provider: str, threads: int, *, profile: str | None = None):
    """An inference session for one graph on one provider (`profile`: a file prefix for
    onnxruntime's per-operator profile, scripts/profile_decode.py)."""
    ort = import_ort()
    options = ort.SessionOptions()
    # Shapes change with every call (prompt chunks, context length), so a memory pattern
    # planned for one call never fits the next; each new one only added to the peak (vision:
    # 1.7 GB instead of 1.2 GB after two screenshots, measured).
    options.enable_mem_pattern = False
    if provider == "cpu":
        _share_cpu_arena(ort)
        options.add_session_config_entry("session.use_env_allocators", "1")
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # warnings about unused initializers are noise to users
    if profile:
        options.enable_profiling = True
        options.profile_file_prefix = profile
    providers = [_ORT_NAMES[provider]] + ([] if provider == "cpu" else [_ORT_NAMES["cpu"]])
    return ort.InferenceSession(str(path), options, providers=providers)
