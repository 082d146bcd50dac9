"""What an evaluation run is: its settings (hashed into the manifest), its tasks and its jobs.

Shared by every way of carrying a run out (one worker, a process pool, a Ray cluster), so that
they file results under the same configuration hash and resume the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.eval.browser import DEFAULT_SCREEN
from agent.eval.model import model_fingerprint
from agent.eval.results import config_hash
from agent.geometry import DEFAULT_MODEL_PIXELS, Size
from agent.hashing import sha256_file
from agent.options import DEFAULTS, RunOptions

if TYPE_CHECKING:
    from agent.eval.ray_pool import RayOptions

DEFAULT_MAX_STEPS = DEFAULTS.max_steps  # a task without its own `max_steps`, with no --max-steps
SCRIPTED = ("scripted:solver", "scripted:wrong")
MINIWOB = "miniwob"
HARNESS_VERSION = 1  # bump when a change alters results, so old run folders refuse to resume


@dataclass(frozen=True)
class EvalSettings:
    """Everything that decides a run's results (hashed into the manifest) and how it is run."""

    tasks: Path
    model: str
    repeat: int = 1
    max_steps: int | None = None  # None: each task's own `max_steps`, else DEFAULT_MAX_STEPS
    screen: Size = DEFAULT_SCREEN
    model_pixels: int | None = None  # the model image's pixel budget; None: the family's own
    settle_timeout: float = DEFAULTS.settle_timeout
    browser_mode: str = "window"  # or "kiosk"; see agent.eval.browser.BrowserOptions
    provider: str = DEFAULTS.provider.value
    solutions: Path | None = None  # scripted solvers' plans (default: next to the task file)
    reference: Path | None = None  # WebVoyager reference answers (shown to the model judge)
    judge_url: str | None = None  # loopback OpenAI-compatible endpoint for the model judge
    judge_model: str | None = None
    # Adaptive compute (agent.loop.RunConfig): off by default, recorded when on.
    history_scale: float = DEFAULTS.history_scale
    idle_waits: int = DEFAULTS.idle_waits
    kv_shift: bool = DEFAULTS.kv_shift  # shifted key/value reuse (agent/inference/kv_shift.py)
    second_look: bool = DEFAULTS.second_look  # the model folder's declared second look (on)
    # How the run is carried out; not part of the configuration hash.
    workers: int = 1
    sites_only: tuple[str, ...] = ()
    # Task ids to run (a MiniWoB++ task also by its page name: "click-button"); () runs all.
    only: tuple[str, ...] = ()
    limit: int | None = None
    env_retries: int = 2
    out: Path | None = None
    # A `server:URL` model on the cluster's private network instead of loopback (--allow-lan).
    allow_lan: bool = False
    ray: RayOptions | None = None  # run on a Ray cluster (agent/eval/ray_pool.py) instead of here
    # Registered model name -> folder (the model registry, handed in by the command line; see
    # agent/eval/model.py). None: --model is a folder or server:URL.
    resolve_model: Callable[[str], Path] | None = field(default=None, compare=False, repr=False)

    def manifest(self) -> dict[str, Any]:
        """The configuration that results depend on."""
        manifest: dict[str, Any] = {
            "harness": HARNESS_VERSION,
            "tasks_file": self.tasks.name,
            "tasks_sha256": _miniwob_fingerprint() if is_miniwob(self.tasks) else sha256_file(self.tasks),
            "model": self.model,
            "repeat": self.repeat,
            "max_steps": self.max_steps,
            "screen": [self.screen.width, self.screen.height],
            # None records Fara-7B's budget, so that its run folders from before keep their
            # hash; another family's own budget follows from the model fingerprint.
            "model_pixels": self.model_pixels or DEFAULT_MODEL_PIXELS,
            "settle_timeout": self.settle_timeout,
            "browser_mode": self.browser_mode,
            "judge": {"url": self.judge_url, "model": self.judge_model} if self.judge_url else None,
        }
        # Only when set, so that run folders from before these options keep their hash.
        if self.history_scale != 1.0:
            manifest["history_scale"] = self.history_scale
        if self.idle_waits:
            manifest["idle_waits"] = self.idle_waits
        if self.kv_shift:
            manifest["kv_shift"] = True
        if not self.second_look:
            manifest["second_look"] = False
        if self.reference is not None:
            manifest["reference_sha256"] = sha256_file(self.reference)
        if self.model in SCRIPTED:
            manifest["solutions_sha256"] = sha256_file(self.solutions_path())
        elif not self.model.startswith("server:"):
            manifest["model_fingerprint"] = model_fingerprint(self.model, self.resolve_model)
        return manifest

    def run_options(self, task_max_steps: int | None = None) -> RunOptions:
        """The options of one task's run: --max-steps, else the task's own, else the default.

        Always offline; the harness's browser pages are served on loopback.
        """
        return RunOptions(max_steps=int(self.max_steps or task_max_steps or DEFAULT_MAX_STEPS),
                          settle_timeout=self.settle_timeout, provider=self.provider,
                          history_scale=self.history_scale, idle_waits=self.idle_waits,
                          second_look=self.second_look, offline=True)

    def solutions_path(self) -> Path:
        if self.solutions is not None:
            return self.solutions
        name = self.tasks.name.removesuffix(".jsonl") + ".solutions.jsonl"
        return self.tasks.with_name(name)


def is_miniwob(tasks: Path) -> bool:
    """`--tasks miniwob`: the MiniWoB++ pages of the installed `miniwob` package."""
    return str(tasks) == MINIWOB


def _miniwob_fingerprint() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"miniwob {version('miniwob')}"
    except PackageNotFoundError:
        return "miniwob (not installed)"


def default_run_dir(manifest: dict[str, Any]) -> Path:
    """Results are filed by a hash of the configuration."""
    from agent.paths import data_dir

    return data_dir() / "eval" / config_hash(manifest)[:12]


@dataclass(frozen=True)
class Job:
    task: Any
    repeat: int

    @property
    def key(self) -> str:
        return f"{self.task.id}#{self.repeat}"




def load_task_file(path: Path, reference: Path | None = None) -> list[Any]:
    """Tasks from our offline JSONL or the original WebVoyager JSONL (detected by content)."""
    from agent.eval.tasks import load_tasks, load_webvoyager, miniwob_tasks

    if is_miniwob(path):
        return miniwob_tasks()
    tasks = load_tasks(path)
    if tasks and all(t.eval is None and re.match(r"^https?://", t.web) for t in tasks):
        # The unchanged WebVoyager file: live sites, graded by the model judge only.
        return load_webvoyager(path, reference)
    return tasks


class TaskSelectionError(ValueError):
    """`--only` named a task the task file does not have."""


def select_tasks(settings: EvalSettings) -> list[Any]:
    """The task file's tasks, filtered by site and id and limited, in file order; ValueError
    names the ids of `only` that match no task (a typo must not quietly run fewer tasks)."""
    tasks = load_task_file(settings.tasks, settings.reference)
    if settings.sites_only:
        wanted = {s.strip().lower() for s in settings.sites_only if s.strip()}
        tasks = [t for t in tasks if site_of(t).lower() in wanted]
    if settings.only:
        ids = {i.strip() for i in settings.only if i.strip()}
        matched = {i: [t for t in tasks if t.id == i or t.id == f"miniwob--{i}"] for i in ids}
        unknown = sorted(i for i, found in matched.items() if not found)
        if unknown:
            raise TaskSelectionError(f"no task with the id {', '.join(unknown)} in {settings.tasks}")
        keep = {t.id for found in matched.values() for t in found}
        tasks = [t for t in tasks if t.id in keep]
    if settings.limit is not None:
        tasks = tasks[: settings.limit]
    return tasks


def site_of(task: Any) -> str:
    """The site a task belongs to (its WebVoyager `web_name`)."""
    return task.web_name


def server_hosts(settings: EvalSettings) -> tuple[str, ...]:
    """The hosts a run lets through the offline guard: a `server:URL` model's with --allow-lan.

    Only a private-network host qualifies (checked by address, every one a name resolves to):
    screenshots may go to a model server inside the cluster, never to the internet.
    """
    if not (settings.allow_lan and settings.model.startswith("server:")):
        return ()
    from urllib.parse import urlsplit

    host = urlsplit(settings.model.split(":", 1)[1]).hostname or ""
    check_private_host(host)
    return (host,)


class HostError(ValueError):
    """A model server host that is not on a private network."""


def check_private_host(host: str) -> None:
    """Raise HostError unless every address of `host` is loopback or private (RFC 1918, ULA)."""
    import ipaddress
    import socket

    try:
        addresses = [ipaddress.ip_address(host.strip("[]").split("%")[0])]
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except OSError as exc:
            raise HostError(f"cannot resolve the model server host {host!r} ({exc})") from exc
        addresses = [ipaddress.ip_address(str(i[4][0]).split("%")[0]) for i in infos]
    public = [str(a) for a in addresses if not (a.is_private or a.is_loopback) or a.is_global]
    if not host or not addresses or public:
        raise HostError(f"--allow-lan lets only a private-network model server through the offline "
                        f"guard; {host or 'the server URL'} is {', '.join(public) or 'no address'}")
