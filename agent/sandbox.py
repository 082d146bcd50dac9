"""The OS layer of offline mode for the model process (Linux, no root needed).

The model process needs no network at all: it reads model files and talks to the app over an
inherited pipe. Two kernel mechanisms take every route away, whatever the code inside does
(ctypes, native libraries, raw file descriptors):

- a new network namespace inside an unprivileged user namespace (`unshare(CLONE_NEWUSER |
  CLONE_NEWNET)`): no interface but a downed loopback, so no route off the machine, and not even
  to the host's loopback services or abstract sockets;
- a seccomp filter that makes socket creation, connect, bind, listen, accept and sendto/sendmsg
  fail with EPERM (plus io_uring, which could open sockets behind seccomp's back, and ptrace/
  process_vm_writev/pidfd_getfd): socket files on disk, such as docker.sock, stay reachable from
  a network namespace, and this closes them.

Both must be set up while the process has one thread (`unshare` refuses a user namespace to a
threaded process), so `agent/offline_boot.py` calls `isolate` during interpreter start-up. Where
the kernel refuses (user namespaces off by sysctl or AppArmor, another architecture), the layer
is reported off with the reason and the Python guard still holds.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct
from dataclasses import dataclass

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000

# Per architecture: the audit arch value and the syscall numbers that are refused.
_ARCHES = {
    "x86_64": (0xC000003E, {"socket": 41, "connect": 42, "accept": 43, "sendto": 44,
                            "sendmsg": 46, "bind": 49, "listen": 50, "socketpair": 53,
                            "ptrace": 101, "accept4": 288, "sendmmsg": 307,
                            "process_vm_writev": 311, "io_uring_setup": 425,
                            "io_uring_enter": 426, "io_uring_register": 427,
                            "pidfd_getfd": 438}),
    "aarch64": (0xC00000B7, {"socket": 198, "socketpair": 199, "bind": 200, "listen": 201,
                             "accept": 202, "connect": 203, "sendto": 206, "sendmsg": 211,
                             "ptrace": 117, "accept4": 242, "sendmmsg": 269,
                             "process_vm_writev": 271, "io_uring_setup": 425,
                             "io_uring_enter": 426, "io_uring_register": 427,
                             "pidfd_getfd": 438}),
}


@dataclass(frozen=True)
class Isolation:
    """What the OS layer does for this process; `detail` says why a part is off."""

    network_namespace: bool = False
    syscall_filter: bool = False
    detail: str = "not requested"

    @property
    def complete(self) -> bool:
        return self.network_namespace and self.syscall_filter

    def describe(self) -> str:
        """One line for the user and for run.json."""
        on = [name for name, flag in (("own network namespace", self.network_namespace),
                                      ("socket syscalls blocked", self.syscall_filter)) if flag]
        if self.complete:
            return "OS layer on: " + ", ".join(on)
        return ("OS layer partly on: " + ", ".join(on) + "; " if on else "OS layer off; ") + \
            f"Python guard only for the rest ({self.detail})"


CURRENT = Isolation()  # this process's state, set by `isolate`


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _unshare(flags: int) -> None:
    if hasattr(os, "unshare"):  # Python 3.12+
        os.unshare(flags)
        return
    if _libc().unshare(flags) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def enter_network_namespace() -> None:
    """Move this (single-threaded) process into a new user + network namespace.

    Our own uid/gid map to themselves, so files and `os.getuid()` look the same inside.
    """
    uid, gid = os.getuid(), os.getgid()
    _unshare(CLONE_NEWUSER | CLONE_NEWNET)
    try:
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1")
        _write("/proc/self/gid_map", f"{gid} {gid} 1")
    except OSError:
        pass  # unmapped ids show as nobody inside; the network is gone either way


def seccomp_program(machine: str | None = None) -> bytes:
    """The BPF filter refusing the network syscalls of this machine's architecture."""
    arch, numbers = _ARCHES[machine or platform.machine()]
    deny = SECCOMP_RET_ERRNO | errno.EPERM
    denied = sorted(numbers.values())

    def op(code: int, jt: int, jf: int, k: int) -> bytes:
        return struct.pack("HBBI", code, jt, jf, k)

    ld_abs, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    body = [op(ld_abs, 0, 0, 4)]  # seccomp_data.arch
    n = len(denied)
    # Layout: [0] ld arch, [1] jeq arch, [2] ld nr, [3] jge x32, [4..4+n) jeq nr, allow, deny.
    body.append(op(jeq, 0, n + 3, arch))  # another ABI (e.g. int 0x80): deny everything
    body.append(op(ld_abs, 0, 0, 0))  # seccomp_data.nr
    body.append(op(jge, n + 1, 0, 0x40000000))  # x32 syscalls: deny
    for i, number in enumerate(denied):
        body.append(op(jeq, n - i, 0, number))
    body.append(op(ret, 0, 0, SECCOMP_RET_ALLOW))
    body.append(op(ret, 0, 0, deny))
    return b"".join(body)


def block_network_syscalls() -> None:
    """Install the seccomp filter (irreversible for this process and its children)."""
    program = seccomp_program()
    count = len(program) // 8
    buffer = ctypes.create_string_buffer(program, len(program))

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    prog = Prog(count, ctypes.cast(buffer, ctypes.c_void_p))
    libc = _libc()
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong,
                           ctypes.c_ulong]
    for args in ((PR_SET_NO_NEW_PRIVS, 1, None, 0, 0),
                 (PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(prog), 0, 0)):
        if libc.prctl(*args) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))


def isolate(*, network: bool = True, syscalls: bool = True) -> Isolation:
    """Set up what the OS allows; record and return the result (never raises)."""
    global CURRENT
    reasons = []
    netns = seccomp = False
    if not network:
        reasons.append("network namespace not requested")
    if not syscalls:
        reasons.append("syscall filter not requested")
    if os.uname().sysname != "Linux":
        reasons.append("only on Linux")
    else:
        if network:
            try:
                enter_network_namespace()
                netns = True
            except (OSError, AttributeError) as exc:
                reasons.append("no user/network namespace: " + (
                    "not permitted here (kernel.unprivileged_userns_clone, "
                    "user.max_user_namespaces or AppArmor)" if getattr(exc, "errno", None)
                    in (errno.EPERM, errno.EACCES, errno.ENOSPC) else str(exc)))
        if syscalls:
            if platform.machine() not in _ARCHES:
                reasons.append(f"no syscall filter for {platform.machine()}")
            else:
                try:
                    block_network_syscalls()
                    seccomp = True
                except (OSError, AttributeError) as exc:
                    reasons.append(f"no syscall filter: {exc}")
    CURRENT = Isolation(netns, seccomp, "; ".join(reasons) or "all layers on")
    return CURRENT


def observed(pid: int) -> tuple[bool, bool] | None:
    """(own network namespace, seccomp filter) of process `pid` as the kernel shows them in /proc.

    Lets the app check what its model process reports instead of taking its word; None where
    /proc cannot tell (another OS, no access).
    """
    try:
        own = os.stat("/proc/self/ns/net").st_ino
        theirs = os.stat(f"/proc/{pid}/ns/net").st_ino
        with open(f"/proc/{pid}/status") as f:
            status = f.read()
    except OSError:
        return None
    filtered = any(line.split(":", 1)[1].strip() == "2" for line in status.split("\n")
                   if line.startswith("Seccomp:"))
    return own != theirs, filtered
