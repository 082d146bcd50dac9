"""The eval harness on a Ray cluster: a local cluster on 127.0.0.1, two actors, real browsers.

Same task ids and verdicts as `--workers 2`; an actor killed mid-task costs that task one
environment retry on the other actor and the run completes; a driver killed mid-run resumes
without redoing finished tasks; actors start under the offline guard or not at all.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from agent.eval import ray_actor, ray_pool
from agent.eval.ray_pool import RayOptions
from agent.eval.results import read_manifest, read_results
from agent.eval.runner import EvalSettings, run_eval
from tests.agent.eval.test_eval_harness import SOLUTIONS, _failures, _raw_lines, representative_subset

# Not imported here: a local cluster binds to loopback only if Ray is first imported after
# RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 is set (agent/eval/ray_pool.py does that).
pytestmark = [pytest.mark.xvfb,
              pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                                 reason="needs the ray extra")]
ROOT = Path(__file__).resolve().parents[3]
TWO_ACTORS = RayOptions(actors=2, cpus=1)


@pytest.fixture(scope="module")
def subset_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.agent.eval.test_eval_harness import TASKS, _lines

    by_id = {t["id"]: line for t, line in zip(_lines(TASKS), _raw_lines(TASKS), strict=True)}
    path = tmp_path_factory.mktemp("tasks") / "subset.jsonl"
    path.write_text("".join(by_id[i] + "\n" for i in representative_subset()), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def cluster():
    """One local cluster (127.0.0.1) for the in-process tests: Ray's start-up is paid once."""
    with ray_pool._Cluster("") as started:
        import ray

        assert ray.util.get_node_ip_address() == "127.0.0.1"
        yield started


def _settings(tasks: Path, out: Path, **kw) -> EvalSettings:
    return EvalSettings(tasks=tasks, model="scripted:solver", out=out, solutions=SOLUTIONS, **kw)


def _verdicts(records: list[dict]) -> dict[str, tuple]:
    return {r.key: (r.passed, r.status, r.failure, r.verdict.get("passed"))
            for r in records}


def _marked(var: str) -> list[int]:
    """Processes started with `var` in their environment (a cluster's, an actor's)."""
    found = []
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if any(e.startswith(var.encode() + b"=") for e in f.read().split(b"\0")):
                    found.append(int(pid))
        except OSError:
            pass
    return found


def _scratch(run_dir: Path) -> list[Path]:
    """Actors' scratch folders of this run's configuration still on this machine."""
    import tempfile

    prefix = f"deskhand-eval-{read_manifest(run_dir)['config_hash'][:8]}-"
    return list(Path(tempfile.gettempdir()).glob(prefix + "*"))


def _settle(left: Callable[[], object], seconds: float = 30.0) -> None:
    """Wait (bounded) until `left()` is empty: reapers clean up after their owner's death, in
    their own time (three rounds over /proc, then the folder), slower on a loaded machine."""
    deadline = time.monotonic() + seconds
    while left() and time.monotonic() < deadline:
        time.sleep(0.2)


def _alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(") ", 1)[1][0] != "Z":
                    alive.append(pid)
        except OSError:
            pass
    return alive


def test_same_task_ids_and_verdicts_as_two_local_workers(subset_file: Path, tmp_path: Path,
                                                         cluster) -> None:
    t0 = time.monotonic()
    wall = time.time()
    local = run_eval(_settings(subset_file, tmp_path / "local", workers=2))
    t1 = time.monotonic()
    on_ray = run_eval(_settings(subset_file, tmp_path / "ray", ray=TWO_ACTORS))
    t2 = time.monotonic()
    assert on_ray.ran == local.ran == len(representative_subset())
    assert _verdicts(on_ray.records) == _verdicts(local.records), \
        _failures(local.records, tmp_path / "local") + "\n" + _failures(on_ray.records, tmp_path / "ray")
    assert on_ray.passed == on_ray.ran, _failures(on_ray.records, tmp_path / "ray")
    # Filed under the same configuration hash: where a run is carried out is not hashed.
    assert read_manifest(tmp_path / "ray")["config_hash"] == \
        read_manifest(tmp_path / "local")["config_hash"]
    # Each task's folder came back to the driver's run folder (no shared file system).
    for record in read_results(tmp_path / "ray"):
        folder = tmp_path / "ray" / record.dir
        assert (folder / "steps.jsonl").exists() and list(folder.glob("step-*.png"))
        assert json.loads((folder / "result.json").read_text())["key"] == record.key
        assert record.env_errors == ()
    # The actors' displays, browsers and scratch folders are gone with them.
    assert not _alive(_marked(ray_actor.ACTOR_VAR))
    assert not _scratch(tmp_path / "ray")
    # The actors ran under the offline guard and Ray never needed a hole in it: no refused
    # attempt from any guarded process (they report to this one's child logs).
    from agent.offline import attempts_since

    assert attempts_since(wall) == []
    n = local.ran
    print(f"\nthroughput, {n} tasks: --workers 2 {60 * n / (t1 - t0):.1f} tasks/min "
          f"({t1 - t0:.1f} s); --ray, 2 actors on a running local cluster "
          f"{60 * n / (t2 - t1):.1f} tasks/min ({t2 - t1:.1f} s)")


def test_an_actor_killed_mid_task_is_retried_on_the_other_one(subset_file: Path, tmp_path: Path,
                                                              cluster) -> None:
    four = tmp_path / "four.jsonl"
    four.write_text("".join(line + "\n" for line in _raw_lines(subset_file)[:4]), encoding="utf-8")
    killed: dict[str, object] = {}

    def kill_one_actor_mid_task() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            for pid in _alive(_marked(ray_actor.ACTOR_VAR)):
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
                    actor = int(Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].split()[1])
                    mark = next(e for e in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                                if e.startswith(ray_actor.ACTOR_VAR.encode()))
                except (OSError, StopIteration, ValueError, IndexError):
                    continue
                try:
                    parent = Path(f"/proc/{actor}/cmdline").read_bytes()
                except OSError:
                    continue
                # A browser started by an actor (not a browser's helper): that actor is mid-task.
                if b"chromium" in cmd and parent.startswith(b"ray::EvalActor"):
                    time.sleep(1.5)
                    killed["marked"] = [p for p in _marked(ray_actor.ACTOR_VAR)
                                        if mark in Path(f"/proc/{p}/environ").read_bytes()
                                        .split(b"\0")]
                    os.kill(actor, signal.SIGKILL)
                    killed["pid"] = actor
                    return
            time.sleep(0.2)

    killer = threading.Thread(target=kill_one_actor_mid_task, daemon=True)
    killer.start()
    summary = run_eval(_settings(four, tmp_path / "run", ray=TWO_ACTORS))
    killer.join()
    assert "pid" in killed, "no actor was seen mid-task"
    assert summary.ran == 4 and summary.passed == 4, _failures(summary.records, tmp_path / "run")
    retried = [r for r in summary.records if r.env_errors]
    assert len(retried) == 1, [r.env_errors for r in summary.records]
    assert len(retried[0].env_errors) == 1
    assert "Ray actor running it was lost" in retried[0].env_errors[0]
    assert f"pid {killed['pid']}" in retried[0].env_errors[0]
    assert retried[0].passed and retried[0].failure is None
    assert sorted(r.key for r in read_results(tmp_path / "run")) == \
        sorted(r.key for r in summary.records)  # one line per task, none twice
    # The killed actor's display and browser did not outlive it, nor did its scratch folder or
    # that of its restarted self (killed at the end of the run). Reapers work after their
    # actor's death, in their own time: wait for them, bounded.
    _settle(lambda: _alive(killed["marked"]) or _scratch(tmp_path / "run"))
    assert not _alive(killed["marked"]), killed["marked"]
    assert not _scratch(tmp_path / "run")


def _cli_argv(tasks: Path, out: Path) -> list[str]:
    return ["eval", "run", "--tasks", str(tasks), "--model", "scripted:solver", "--out", str(out),
            "--solutions", str(SOLUTIONS), "--ray", "--workers", "2", "--ray-cpus", "1",
            "--no-report"]


def test_a_killed_driver_resumes_without_redoing_finished_tasks(
        subset_file: Path, tmp_path: Path, cluster, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items()
           if k not in ("RAY_ADDRESS", ray_pool.LOCAL_CLUSTER_VAR)}
    ours = os.environ.get(ray_pool.LOCAL_CLUSTER_VAR)
    driver = subprocess.Popen([sys.executable, "-m", "app.commands", *_cli_argv(subset_file, out)],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True)
    try:
        assert driver.stdout is not None
        for line in driver.stdout:  # its own local cluster; killed after two results
            if line.startswith("[2/"):
                break
        theirs = [p for p in _alive(_marked(ray_pool.LOCAL_CLUSTER_VAR))
                  if f"{ray_pool.LOCAL_CLUSTER_VAR}={ours}".encode()
                  not in Path(f"/proc/{p}/environ").read_bytes().split(b"\0")]
        driver.send_signal(signal.SIGKILL)
    finally:
        driver.kill()
        driver.wait()
    kept = read_results(out)
    assert 2 <= len(kept) < 6
    assert theirs, "the driver's local cluster was not seen"
    _settle(lambda: _alive(theirs) or _scratch(out))
    assert not _alive(theirs), "the killed driver's cluster, actors or browsers outlived it"
    assert not _scratch(out)

    from tests.agent.eval.test_eval_harness import _cli

    assert _cli(_cli_argv(subset_file, out)) == 0  # the same command, on the test's cluster
    assert f"ran {6 - len(kept)}, skipped {len(kept)}" in capsys.readouterr().out
    records = read_results(out)
    assert len(records) == 6 and len({r.key for r in records}) == 6
    assert records[: len(kept)] == kept  # finished tasks were not redone
    assert all(r.passed for r in records), _failures(records, out)


def test_an_actor_refuses_to_start_without_the_offline_guard(subset_file: Path, tmp_path: Path,
                                                            cluster) -> None:
    import ray

    settings = _settings(subset_file, tmp_path / "run")
    actor = ray.remote(ray_pool.EvalActor).options(num_cpus=1).remote(
        settings, settings.manifest(), None)
    with pytest.raises(ray.exceptions.RayActorError, match="offline guard did not start"):
        ray.get(actor.where.remote(), timeout=120)
    # Actors too big for a local cluster: said at once, not after waiting for a node to join.
    with pytest.raises(RuntimeError, match="no evaluation actor could be placed"):
        ray_pool._Pool(settings, tmp_path, RayOptions(cpus=512), (), jobs=1, local=True)
    # An actor that cannot start stops the run with the reason, rather than filing environment
    # errors: here the model on the node is not the one the driver filed in the manifest.
    filed = EvalSettings.manifest

    def other_model(self) -> dict:
        return {**filed(self), "model_fingerprint": "0123456789abcdef"}

    EvalSettings.manifest = other_model  # type: ignore[method-assign]
    try:
        with pytest.raises(RuntimeError, match=r"(?s)failed to start.*not the one the driver"):
            run_eval(_settings(subset_file, tmp_path / "broken", ray=TWO_ACTORS))
    finally:
        EvalSettings.manifest = filed  # type: ignore[method-assign]
    assert read_results(tmp_path / "broken") == []


# --- no cluster needed ----------------------------------------------------------------------------

@pytest.mark.parametrize("host,ok", [("10.1.2.3", True), ("192.168.0.7", True), ("127.0.0.1", True),
                                     ("8.8.8.8", False), ("2001:4860::8888", False), ("", False)])
def test_allow_lan_lets_only_a_private_model_server_through(host: str, ok: bool) -> None:
    from agent.eval.settings import HostError, server_hosts

    settings = EvalSettings(tasks=Path("x.jsonl"), model=f"server:http://[{host}]:8000/v1"
                            if ":" in host else f"server:http://{host}:8000/v1", allow_lan=True)
    if ok:
        assert server_hosts(settings) == (host,)
        assert server_hosts(replace(settings, allow_lan=False)) == ()
    else:
        with pytest.raises(HostError):
            server_hosts(settings)


def test_a_public_model_server_is_refused_before_anything_starts(tmp_path: Path) -> None:
    from agent.eval.settings import HostError

    settings = EvalSettings(tasks=tmp_path / "none.jsonl", model="server:http://8.8.8.8/v1",
                            allow_lan=True, out=tmp_path / "run", ray=TWO_ACTORS)
    with pytest.raises(HostError):
        run_eval(settings)
    assert not (tmp_path / "run").exists()


def test_a_task_folder_from_an_actor_stays_inside_its_place(tmp_path: Path) -> None:
    from agent.eval.runner import Job
    from agent.eval.tasks import Task

    job = Job(Task(id="shop--1", web_name="shop", ques="q", web="/shop/"), 0)
    record = {"key": "shop--1#0", "dir": "tasks/shop--1/r0"}
    ray_pool._unpack(tmp_path, record, job, [("step-000.png", b"png"), ("sub/x.json", b"{}")])
    assert (tmp_path / "tasks/shop--1/r0/sub/x.json").read_bytes() == b"{}"
    for name in ("../../../evil", "/etc/evil", ""):
        with pytest.raises(RuntimeError, match="outside"):
            ray_pool._unpack(tmp_path, record, job, [(name, b"x")])
    with pytest.raises(RuntimeError, match="answered"):
        ray_pool._unpack(tmp_path, {**record, "dir": "tasks/other/r0"}, job, [])
    assert not (tmp_path.parent / "evil").exists()


def test_a_lost_job_goes_to_another_actor_first() -> None:
    from collections import deque

    from agent.eval.runner import Job

    a, b = Job(_task("a--1"), 0), Job(_task("b--1"), 0)
    queue = deque([a, b])
    assert ray_pool._next_job(queue, {a.key: 0}, 0, others=True) is b  # actor 0 lost `a`
    assert ray_pool._next_job(queue, {a.key: 0}, 0, others=True) is None  # waits for another
    assert ray_pool._next_job(queue, {a.key: 0}, 1, others=True) is a
    queue.append(a)
    assert ray_pool._next_job(queue, {a.key: 0}, 0, others=False) is a  # no other actor left


def _task(task_id: str):
    from agent.eval.tasks import Task

    return Task(id=task_id, web_name=task_id.split("--")[0], ques="q", web="/")


def test_actor_resources_follow_the_model() -> None:
    scripted = EvalSettings(tasks=Path("t.jsonl"), model="scripted:solver")
    assert ray_pool.actor_resources(scripted, RayOptions()) == \
        {"num_cpus": 1.0, "num_gpus": 0.0, "memory": 2 << 30}
    gpu = EvalSettings(tasks=Path("t.jsonl"), model="/nonexistent/model", provider="cuda")
    assert ray_pool.actor_resources(gpu, RayOptions())["num_gpus"] == 1.0
    assert ray_pool.actor_resources(gpu, RayOptions(cpus=8, gpus=0.25)) == \
        {"num_cpus": 8, "num_gpus": 0.25, "memory": 2 << 30}
    ask = {"num_cpus": 4, "num_gpus": 1, "memory": 2 << 30}
    assert ray_pool._fit({"CPU": 16.0, "GPU": 2.0, "memory": 64 << 30}, ask) == 2
    assert ray_pool._fit({"CPU": 16.0, "GPU": 2.0, "memory": 3 << 30}, ask) == 1
    assert ray_pool._fit({"CPU": 1.0, "memory": 64 << 30}, {**ask, "num_gpus": 0}) == 0


def test_a_task_lost_on_every_try_is_filed_as_an_environment_error(tmp_path: Path) -> None:
    from agent.eval.runner import Job

    reasons = ["the Ray actor running it was lost (n1 pid 7): gone"] * 3
    record = ray_pool.lost_record(tmp_path, Job(_task("shop--2"), 1), reasons)
    assert record["key"] == "shop--2#1" and record["dir"] == "tasks/shop--2/r1"
    assert not record["passed"] and record["failure"] == "environment"
    assert record["status"] == "error" and record["env_errors"] == reasons
    assert json.loads((tmp_path / "tasks/shop--2/r1/result.json").read_text()) == record


class _Ref:
    """A stand-in object reference: its value, or the error `get` raises."""

    def __init__(self, value: object = None, error: BaseException | None = None) -> None:
        self.value, self.error = value, error


class _FakeRay:
    """Just what the pool's scheduling loop calls: `wait` (every ref is ready at once) and
    `get` (the value, or Ray's error)."""

    def wait(self, refs: list[_Ref], num_returns: int, timeout: float):
        assert refs, "ray.wait with nothing to wait for"
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref: _Ref) -> object:
        if ref.error is not None:
            raise ref.error
        return ref.value


class _RestartingActor:
    """A stand-in actor: lost during its first job (`loses`), then found still restarting by its
    next `restarts` probes (as Ray answers a call to a restarting actor: at once, with an
    error); `restarts=None`: restarting for ever from its first probe (a node gone for good)."""

    def __init__(self, loses: bool = True, restarts: int | None = 2) -> None:
        from ray.exceptions import RayActorError

        self.probes = 0
        self.ran: list[str] = []
        self.restarts = restarts
        self.lose_next: BaseException | None = RayActorError() if loses else None

        class _Method:
            def __init__(self, call: Callable[..., _Ref]) -> None:
                self.remote = call

        self.where = _Method(self._where)
        self.run = _Method(self._run)

    def _where(self) -> _Ref:
        from ray.exceptions import ActorUnavailableError

        self.probes += 1
        if self.restarts is None or (self.probes > 1 and self.restarts > 0):
            if self.restarts is not None:
                self.restarts -= 1
            return _Ref(error=ActorUnavailableError("The actor is temporarily unavailable: "
                                                    "IOError: The actor is restarting.", None))
        return _Ref(f"here pid {self.probes}")

    def _run(self, job) -> _Ref:
        if self.lose_next is not None:
            error, self.lose_next = self.lose_next, None
            return _Ref(error=error)
        self.ran.append(job.key)
        return _Ref(({"dir": ray_pool.task_dir(job), "key": job.key, "env_errors": []}, []))


def _fake_pool(tmp_path: Path, actors: list[_RestartingActor]) -> ray_pool._Pool:
    pool = object.__new__(ray_pool._Pool)  # its scheduling alone: no cluster, no actor process
    pool.ray, pool.actors, pool.idle, pool.run_dir = _FakeRay(), actors, [], tmp_path
    pool.settings = EvalSettings(tasks=tmp_path / "t.jsonl", model="scripted:solver", out=tmp_path)
    return pool


def _jobs(n: int) -> list:
    from agent.eval.settings import Job
    from agent.eval.tasks import Task

    return [Job(Task(id=f"t--{i}", web_name="t", ques="q", web="/"), 0) for i in range(n)]


def test_an_actor_ray_is_still_restarting_rejoins_once_it_is_up(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("ray")
    monkeypatch.setattr(ray_pool, "REPROBE_PAUSE", 0.01)
    actor = _RestartingActor()
    pool = _fake_pool(tmp_path, [actor])
    jobs = _jobs(2)
    filed: list[dict] = []
    pool.run(jobs, filed.append)
    # The only actor came back after two "restarting" answers and ran both jobs, the lost one
    # first (its loss kept as an environment error); the run did not give up on it.
    assert actor.probes == 4
    assert actor.ran == ["t--0#0", "t--1#0"]
    assert [r["key"] for r in filed] == ["t--0#0", "t--1#0"]
    assert len(filed[0]["env_errors"]) == 1 and "lost" in filed[0]["env_errors"][0]


def test_an_actor_that_never_comes_back_does_not_hold_back_a_job_lost_by_another(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One actor loses its job and comes back; the other is restarting for ever (its node gone):
    the lost job goes back to the one that came back rather than wait for the other."""
    pytest.importorskip("ray")
    monkeypatch.setattr(ray_pool, "REPROBE_PAUSE", 0.01)
    back, gone = _RestartingActor(), _RestartingActor(loses=False, restarts=None)
    pool = _fake_pool(tmp_path, [back, gone])
    waits = 0
    real_wait = pool.ray.wait

    def bounded_wait(refs, num_returns, timeout):
        nonlocal waits
        waits += 1
        assert waits < 2000, "the run waits for an actor that never comes back"
        return real_wait(refs, num_returns, timeout)

    pool.ray.wait = bounded_wait
    filed: list[dict] = []
    pool.run(_jobs(1), filed.append)
    assert back.ran == ["t--0#0"] and gone.ran == [] and gone.probes > 1
    assert [r["key"] for r in filed] == ["t--0#0"] and len(filed[0]["env_errors"]) == 1
