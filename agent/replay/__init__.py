"""Verified replay of a recorded run: each action only after its target is found on screen again."""

from agent.replay.backend import LazyBackend, ReplayBackend, ReplayCheck
from agent.replay.recording import (
    Recording,
    ReplayRefused,
    check_replayable,
    from_record,
    parse_sets,
    task_parameters,
    with_parameters,
)

__all__ = [
    "LazyBackend",
    "Recording",
    "ReplayBackend",
    "ReplayCheck",
    "ReplayRefused",
    "check_replayable",
    "from_record",
    "parse_sets",
    "task_parameters",
    "with_parameters",
]
