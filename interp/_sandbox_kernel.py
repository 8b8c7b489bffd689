"""What a sandbox asks of the kernel beyond bwrap's command line: the
seccomp filter bwrap installs (``seccomp_program``) and removing a tree the
code made, whatever it made (``remove_tree``). Used by ``interp.sandbox``."""

from __future__ import annotations

import os
import platform
import stat
import struct
from typing import List, Optional, Tuple


def remove_tree(top: str) -> Optional[str]:
    """Remove ``top`` and everything below it, whatever it holds: any depth
    and path length (no recursion, one descriptor at a time, names relative
    to it), directories without permissions (given 0700 first), symlinks
    removed and never followed. Never raises: returns why something was left
    (None: all gone)."""
    try:
        info = os.lstat(top)
        if not stat.S_ISDIR(info.st_mode):
            os.unlink(top)
            return None
        if info.st_mode & 0o700 != 0o700:
            os.chmod(top, 0o700)
        fd = os.open(top, _DIR_FLAGS)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return "%s: %s" % (top, exc)
    names: List[str] = []  # the path from top down to fd
    try:
        while True:
            child = None
            with os.scandir(fd) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        child = entry.name
                        break
                    os.unlink(entry.name, dir_fd=fd)
            if child is not None:
                if os.stat(child, dir_fd=fd, follow_symlinks=False).st_mode & 0o700 != 0o700:
                    os.chmod(child, 0o700, dir_fd=fd)
                inner = os.open(child, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = inner
                names.append(child)
                continue
            if not names:
                break
            outer = os.open("..", _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = outer
            os.rmdir(names.pop(), dir_fd=fd)
        os.close(fd)
        fd = -1
        os.rmdir(top)
    except OSError as exc:
        return "%s: %s" % (os.path.join(top, *names), exc)
    finally:
        if fd >= 0:
            os.close(fd)
    return None


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


#: seccomp, per machine: for each architecture (AUDIT_ARCH_*) the system call
#: numbers of (clone, unshare, clone3, setns, memfd_create, (shmget, ...)) (new
#: user namespaces are refused: the zygote keeps CAP_SYS_ADMIN in the
#: sandbox's own user namespace until it seals the sandbox, so bwrap's
#: --disable-userns, a nested namespace, is not used), memfd_create and the
#: calls that make System V shared memory (i386 also reaches it through ipc()).
_SYSCALLS = {
    "x86_64": ((0xC000003E, (56, 272, 435, 308, 319, (29,))),
               (0x40000003, (120, 310, 435, 346, 356, (395, 117)))),
    "aarch64": ((0xC00000B7, (220, 97, 435, 268, 279, (194,))),
                (0x40000028, (120, 337, 435, 375, 385, (307,)))),
}
_CLONE_NEWUSER = 0x10000000
_X32_BIT = 0x40000000
_ALLOW, _ERRNO = 0x7FFF0000, 0x00050000
_LD, _JEQ, _JSET, _RET = 0x20, 0x15, 0x45, 0x06


def seccomp_program(memfd: bool = True, machine: Optional[str] = None) -> Optional[bytes]:
    """A classic-BPF seccomp filter for ``bwrap --seccomp``, or None on an
    architecture it does not know. It refuses new user namespaces
    (``clone``/``unshare`` with CLONE_NEWUSER: EPERM; ``clone3``: ENOSYS, so
    libc falls back to clone; ``setns``: EPERM), x32 system calls, and with
    ``memfd``, ``memfd_create`` (ENOSYS: callers fall back to files in the
    sized /dev/shm or /tmp) and ``shmget`` (ENOSYS: a System V segment's
    pages, once detached, are held outside every address space and outlive
    the process, so RLIMIT_AS does not bound them)."""
    arches = _SYSCALLS.get(machine or platform.machine())
    if arches is None:
        return None
    eperm, enosys = _ERRNO | 1, _ERRNO | 38
    program: List[Tuple[int, int, int, int]] = [(_LD, 0, 0, 4)]  # A = arch
    for arch, (clone, unshare, clone3, setns, memfd_create, shm) in arches:
        block: List[Tuple[int, int, int, int]] = [(_LD, 0, 0, 0)]  # A = syscall number
        if arch == 0xC000003E:
            block += [(_JSET, 0, 1, _X32_BIT), (_RET, 0, 0, enosys)]
        rules: List[Tuple[int, List[Tuple[int, int, int, int]]]] = [
            (clone, [(_LD, 0, 0, 16), (_JSET, 0, 1, _CLONE_NEWUSER), (_RET, 0, 0, eperm),
                                (_RET, 0, 0, _ALLOW)]),
            (unshare, [(_LD, 0, 0, 16), (_JSET, 0, 1, _CLONE_NEWUSER), (_RET, 0, 0, eperm),
                                  (_RET, 0, 0, _ALLOW)]),
            (clone3, [(_RET, 0, 0, enosys)]),
            (setns, [(_RET, 0, 0, eperm)]),
        ]
        if memfd:
            rules += [(number, [(_RET, 0, 0, enosys)]) for number in (memfd_create, *shm)]
        for number, body in rules:
            block.append((_JEQ, 0, len(body), number))
            block += body
        block.append((_RET, 0, 0, _ALLOW))
        program.append((_JEQ, 0, len(block), arch))
        program += block
    program.append((_RET, 0, 0, enosys))  # an architecture the filter does not know
    return b"".join(struct.pack("=HBBI", *instruction) for instruction in program)
