"""Errors that cross module boundaries, classified once: whose fault is it?

- a *model mistake* (the model asked for something impossible): fed back to the model, retried,
  then the run ends as MODEL_ERROR; never an environment error, never retried by the harness;
- an *environment failure* (display lost, permission, a backend that cannot run): the run ends
  as ERROR and the harness may retry it on a fresh environment.
"""

from __future__ import annotations


class ExecutorError(RuntimeError):
    """Input could not be performed (display lost, permission); the message is for users."""


class InvalidActionError(ExecutorError):
    """The model asked for something no input can do (a browser action with browser shortcuts
    off); a model mistake. Unknown key names are refused earlier, by the parser (keys.py)."""


class UserError(Exception):
    """A problem the user can fix (a missing file, a model that cannot run); printed without a
    traceback by the command line."""
