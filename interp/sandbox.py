"""Sandboxed interpreters: the :class:`Sandbox` options, and the ``bwrap``
command line they become.

A sandboxed interpreter starts its zygote (see ``interp._worker.zygote``)
inside `bubblewrap <https://github.com/containers/bubblewrap>`_ (``bwrap``,
package ``bubblewrap``), and every context is a fork of that zygote, so a
sandbox costs one start and a context stays a fork. What the code inside sees:

* the system (``/usr`` and the ``/bin``, ``/sbin``, ``/lib*`` links), a curated
  part of ``/etc`` (no ``shadow``), the Python installation and interp's
  worker files, all read-only, at their host paths;
* the workspace read-write (at its host path; the contexts' default cwd and
  ``HOME``), plus the ``read_only`` / ``writable`` paths asked for;
* a private ``/tmp`` (tmpfs of ``tmp_size`` bytes), a minimal ``/dev``, its
  own ``/proc`` of its own PID namespace;
* no network (its own network namespace) unless ``network=True``;
* its own user, IPC, UTS and cgroup namespaces, a new session (no TIOCSTI
  on the caller's terminal), no capabilities, ``no_new_privs``, no further
  user namespaces; the zygote is PID 1 of the sandbox, so user code cannot
  signal it, and when it exits (the parent died or closed the interpreter)
  the kernel kills every process inside.

Limits use the strongest mechanism available, and :meth:`Sandbox.enforcement`
says which one applied and what could not be enforced.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import site
import stat
import sys
import tempfile
import threading
import warnings
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ._cgroup import CGROUP_PREFIX, STALE_CGROUP_AGE, _Cgroup, _kernel, _read
from ._sandbox_kernel import remove_tree, seccomp_program
from ._sandbox_paths import (PathLike, executable, given_paths, homes, importable, inside, python_directories,
                             real_path)
from .errors import InvalidCwdError, SandboxError, SandboxUnavailableError

__all__ = [
    "CGROUP_PREFIX",
    "STALE_CGROUP_AGE",
    "Sandbox",
    "add_arguments",
    "from_arguments",
    "remove_tree",
    "sandbox_option",
    "seccomp_program",
]


MiB = 1 << 20
#: Default limits (each can be set to None for no limit).
DEFAULT_MEMORY = 2048 * MiB
DEFAULT_PROCESSES = 256
DEFAULT_FILE_SIZE = 1024 * MiB
DEFAULT_TMP_SIZE = 256 * MiB
#: The temporary workspace (no ``workspace`` given) is a private tmpfs of this size.
DEFAULT_WORKSPACE_SIZE = 1024 * MiB
#: Files (inodes) the temporary workspace may hold.
DEFAULT_INODES = 65536
#: The interp package's directory (shown read-only: the host imports from it).
INTERP_DIR = os.path.dirname(os.path.realpath(__file__))

#: The parts of /etc code needs (users, name resolution, TLS roots, time
#: zones, locales, the dynamic linker, fonts, MIME types), not its secrets:
#: of /etc/ssl and /etc/pki only the certificates and OpenSSL's settings (their
#: private/ directories hold the host's keys), and no machine-id (it
#: identifies the host).
ETC_ENTRIES = (
    "passwd", "group", "hosts", "host.conf", "resolv.conf", "nsswitch.conf", "gai.conf", "services",
    "protocols", "localtime", "timezone", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives",
    "ssl/certs", "ssl/openssl.cnf", "ca-certificates", "ca-certificates.conf", "pki/tls/certs",
    "pki/tls/openssl.cnf", "pki/ca-trust", "crypto-policies", "fonts", "mime.types",
    "locale.alias", "locale.conf", "os-release", "matplotlibrc", "python3",
)
#: The device nodes and links of the sandbox's /dev (as bwrap's --dev makes it).
DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty")
DEV_LINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
             ("stderr", "/proc/self/fd/2"), ("core", "/proc/kcore"), ("ptmx", "pts/ptmx"))
#: Host directories that are, or link into, the system.
SYSTEM_DIRS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
#: Variables copied from the parent into the default environment.
LOCALE_VARIABLES = ("LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_COLLATE", "LC_MESSAGES",
                    "LC_NUMERIC", "LC_TIME", "LC_MONETARY", "TZ")
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"

#: How bwrap's messages about the files it shows begin (not about namespaces).
FILE_FAILURES = ("bwrap: Can't find source path", "bwrap: Can't create file", "bwrap: Can't mkdir",
                 "bwrap: Can't bind mount", "bwrap: Can't chdir", "bwrap: execvp")
INSTALL_HINT = ("install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install "
                "bubblewrap; Arch: pacman -S bubblewrap), or give its path as Sandbox(bwrap=...)")


def _limit(name: str, value: Optional[float]) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError("%s must be a positive number or None, not %r" % (name, value))
    return int(value)




class Sandbox:
    """Where a sandboxed interpreter's code runs, and what it may touch.

    Pass one to ``CodeInterpreter(sandbox=...)`` or
    ``AsyncCodeInterpreter(sandbox=...)`` (``sandbox=True``: ``Sandbox()``).
    One sandbox serves one interpreter: every context of that interpreter is
    a process inside it, sharing its files; separate interpreters need
    separate ``Sandbox`` objects.

    ``workspace``: a host directory the code may read and write, the
    contexts' default cwd and ``HOME`` (not bounded: it is the user's).
    None: a private tmpfs of ``workspace_size`` bytes inside the sandbox
    (its files never reach the host; an empty host directory marks its
    path), gone when the interpreter closes. ``read_only`` / ``writable``: more
    host paths to show, at the same paths. ``network``: False, no network at
    all (not even loopback to the host); True, the host's network. ``env``:
    the environment inside (default: ``PATH``, ``HOME`` = the workspace,
    ``TERM`` and the parent's ``LANG``/``LC_*``/``TZ``; nothing else leaks).

    Limits (None: none): ``memory`` in bytes, ``processes`` (how many may
    exist in the sandbox at once), ``cpu_time`` in seconds of CPU per
    process, ``file_size`` in bytes per file written, ``tmp_size`` in bytes
    for the private ``/tmp``. See :meth:`enforcement` for what enforces each.

    ``python`` is the interpreter run inside (default: ``sys.executable``;
    its installation is shown read-only), ``bwrap`` the bubblewrap binary
    (default: ``bwrap`` on ``PATH``).

    Raises SandboxUnavailableError when the interpreter starts if bubblewrap
    is missing or cannot create its namespaces; interp never falls back to
    running the code unsandboxed.
    """

    def __init__(self, workspace: Optional[PathLike] = None, *,
                 read_only: Sequence[PathLike] = (), writable: Sequence[PathLike] = (),
                 network: bool = False, env: Optional[Mapping[str, str]] = None,
                 memory: Optional[int] = DEFAULT_MEMORY, processes: Optional[int] = DEFAULT_PROCESSES,
                 cpu_time: Optional[float] = None, file_size: Optional[int] = DEFAULT_FILE_SIZE,
                 tmp_size: Optional[int] = DEFAULT_TMP_SIZE, python: Optional[str] = None,
                 bwrap: Optional[str] = None, workspace_size: int = DEFAULT_WORKSPACE_SIZE,
                 inodes: Optional[int] = DEFAULT_INODES, prestart: int = 0) -> None:
        if workspace is not None:
            path = real_path(os.path.abspath(os.fspath(workspace)))
            if not os.path.isdir(path):
                raise InvalidCwdError(2, "sandbox workspace is not a directory", path)
            self._given_workspace: Optional[str] = path
        else:
            self._given_workspace = None
        self.read_only = given_paths("read_only", read_only)
        self.writable = given_paths("writable", writable)
        # the spellings you gave (through your own symlinks) of what is shown at its real path: check_cwd
        # takes a cwd named through one of them
        given = [os.path.abspath(os.fspath(value)) for value in [*([workspace] if workspace is not None else []),
                                                                   *read_only, *writable]]
        self._aliases = sorted(((path, real_path(path)) for path in given if real_path(path) != path), reverse=True)
        if not isinstance(network, bool):
            raise TypeError("network must be True or False")
        self.network = network
        if env is not None:
            if not all(isinstance(k, str) and isinstance(v, str) and k and "=" not in k and "\0" not in k + v
                       for k, v in dict(env).items()):
                raise ValueError("env must map variable names to strings")
        self._env = None if env is None else dict(env)
        self.memory = _limit("memory", memory)
        self.processes = _limit("processes", processes)
        self.cpu_time = _limit("cpu_time", cpu_time)
        self.file_size = _limit("file_size", file_size)
        self.tmp_size = _limit("tmp_size", tmp_size)
        self.workspace_size = _limit("workspace_size", workspace_size) or DEFAULT_WORKSPACE_SIZE
        self.inodes = _limit("inodes", inodes)
        if isinstance(prestart, bool) or not isinstance(prestart, int) or not 0 <= prestart <= 16:
            raise ValueError("prestart must be an int from 0 to 16, not %r" % (prestart,))
        self.prestart = prestart
        self.python = executable(python or sys.executable)
        self.bwrap = bwrap
        self._workspace: Optional[str] = self._given_workspace
        self._temporary: Optional[str] = None
        self._cgroup: Optional[_Cgroup] = None
        self._started = False  # acquire() decided on the cgroup
        self._lock = threading.Lock()
        self._in_use = False

    def __repr__(self) -> str:
        return "<Sandbox workspace=%r network=%s>" % (self._workspace, self.network)

    def config_key(self) -> str:
        """The options that make two sandboxes interchangeable (for prestart)."""
        return repr((self._given_workspace, self.read_only, self.writable, self.network,
                     sorted(self.env.items()) if self._env is not None else None, self.memory, self.processes,
                     self.cpu_time, self.file_size, self.tmp_size, self.workspace_size, self.inodes,
                     self.python, self.bwrap))

    def adopt(self, other: Sandbox) -> bool:
        """Take over ``other``'s started state (its workspace, cgroup): the
        warm sandbox ``other`` becomes this one's. False if this one already
        made its own temporary workspace or serves an interpreter."""
        with self._lock:
            if self._in_use or (self._given_workspace is None and self._workspace is not None):
                return False
            self._workspace, self._temporary = other._workspace, other._temporary
            self._cgroup, self._started, self._in_use = other._cgroup, other._started, True
        with other._lock:
            other._temporary = other._cgroup = None
            other._in_use = other._started = False
        return True

    # -- what the code sees -------------------------------------------------

    @property
    def workspace(self) -> str:
        """The workspace's host path (a temporary directory is made on first use)."""
        with self._lock:
            if self._workspace is None:
                self._temporary = real_path(tempfile.mkdtemp(prefix="interp-sandbox-"))
                self._workspace = self._temporary
            return self._workspace

    @property
    def env(self) -> Dict[str, str]:
        """The environment of the code inside."""
        if self._env is not None:
            return dict(self._env)
        env = {"PATH": DEFAULT_PATH, "HOME": self.workspace, "TERM": os.environ.get("TERM", "dumb")}
        env.update((key, os.environ[key]) for key in LOCALE_VARIABLES if key in os.environ)
        return env

    def visible(self) -> Tuple[str, ...]:
        """The host paths a context may use as its cwd (the workspace, ``writable`` and ``read_only``)."""
        return (self.workspace, *self.writable, *self.read_only)

    def check_cwd(self, path: str) -> str:
        """``path`` as the code inside sees it (a path below a workspace,
        ``read_only`` or ``writable`` path you named through a symlink is
        renamed below its real path; nothing below is resolved on the host),
        else InvalidCwdError."""
        for alias, real in self._aliases:
            if inside(path, [alias]):
                path = real + path[len(alias):]
                break
        if not inside(path, self.visible()):
            raise InvalidCwdError(2, "context cwd is outside the sandbox (its workspace is %s; add the "
                                  "directory to Sandbox(writable=...) or read_only=...)" % self.workspace, path)
        return path

    def python_paths(self) -> List[str]:
        """The Python installations' directories, shown read-only (real
        paths): those of ``python`` as it reports them itself (its prefixes,
        its venv, its import path, its site-packages; SandboxError if it
        cannot be run), and this process's own."""
        paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
                 os.path.dirname(os.path.dirname(os.path.realpath(self.python)))}
        try:
            paths.update(site.getsitepackages())
            paths.add(site.getusersitepackages())
        except AttributeError:  # an old virtualenv's site module
            pass
        paths = {real_path(path) for path in paths if path}
        paths.update(python_directories(self.python))
        return sorted(path for path in paths if os.path.exists(path))

    # -- limits ---------------------------------------------------------------

    def enforcement(self) -> Dict[str, str]:
        """For every limit that is set: how it is enforced on this host, or
        ``"NOT ENFORCED: <why>"``. Decided when the sandbox starts (before
        that, what would apply now)."""
        cgroup = self._cgroup if self._started else _Cgroup.probe()
        report: Dict[str, str] = {}
        root = os.getuid() == 0
        if self.memory is not None:
            if cgroup is not None and cgroup.memory:
                report["memory"] = "cgroup (%s): the whole sandbox's memory, /tmp included" % cgroup.version
            else:
                report["memory"] = "RLIMIT_AS: each process's address space (no delegated cgroup)"
        if self.processes is not None:
            if cgroup is not None and cgroup.pids:
                report["processes"] = "cgroup (%s) pids.max" % cgroup.version
            elif root:
                report["processes"] = ("NOT ENFORCED: RLIMIT_NPROC does not bind uid 0 and no writable "
                                       "cgroup with the pids controller was found; run as an unprivileged user")
            elif _kernel() < (5, 14):
                report["processes"] = ("RLIMIT_NPROC: counts every process of uid %d on the host "
                                       "(kernel < 5.14)" % os.getuid())
            else:
                report["processes"] = "RLIMIT_NPROC in the sandbox's own user namespace"
        if self.cpu_time is not None:
            report["cpu_time"] = "RLIMIT_CPU: CPU seconds of each process (SIGKILL at the hard limit)"
        if self.file_size is not None:
            report["file_size"] = "RLIMIT_FSIZE: each file written (EFBIG beyond)"
        if self.tmp_size is not None:
            report["tmp_size"] = "tmpfs size of /tmp and of /dev/shm, each (ENOSPC beyond)"
        if self.memory is not None and not (cgroup is not None and cgroup.memory):
            if seccomp_program() is not None:
                report["memfd"] = ("seccomp: memfd_create fails with ENOSYS (memory no address space "
                                   "maps is out of RLIMIT_AS's reach)")
            else:
                report["memfd"] = ("NOT ENFORCED: memfd_create memory escapes RLIMIT_AS and no seccomp "
                                   "filter is known for %s" % platform.machine())
            if seccomp_program() is not None:
                report["shm"] = ("seccomp: shmget fails with ENOSYS (System V shared memory outlives the "
                                 "process and is out of RLIMIT_AS's reach)")
            else:
                report["shm"] = ("NOT ENFORCED: System V shared memory escapes RLIMIT_AS and no seccomp "
                                 "filter is known for %s" % platform.machine())
        if self.inodes is not None:
            if self._can_seal():
                report["inodes"] = ("nr_inodes of /tmp, /dev/shm and the temporary workspace, each (set by the "
                                    "zygote before it drops its last capability)")
            elif seccomp_program() is None:
                report["inodes"] = ("NOT ENFORCED: no seccomp filter is known for %s, so bwrap's --disable-userns "
                                    "is used and the zygote cannot remount the tmpfs mounts" % platform.machine())
            else:
                report["inodes"] = ("NOT ENFORCED: bwrap is setuid root here and keeps no capability for the "
                                    "zygote to remount the tmpfs mounts with")
        if self._given_workspace is None:
            report["workspace"] = "tmpfs of workspace_size bytes (the temporary workspace)"
        return report

    def seal(self) -> Dict[str, object]:
        """What the zygote does with the one capability it starts with
        (CAP_SYS_ADMIN in the sandbox's user namespace) before dropping every
        capability: remount the tmpfs mounts with their inode bound."""
        if self.inodes is None or not self._can_seal():
            return {}
        size = [] if self.tmp_size is None else ["size=%d" % self.tmp_size]
        remount = [[target, ",".join([*size, "nr_inodes=%d" % self.inodes, "mode=1777"])]
                   for target in ("/tmp", "/dev/shm")]
        if self._given_workspace is None:
            remount.append([self.workspace, "size=%d,nr_inodes=%d,mode=0700" % (self.workspace_size, self.inodes)])
        return {"remount": remount, "devpts": "/dev/pts"}

    def _can_seal(self) -> bool:
        """True if the zygote can be given the capabilities to seal the
        sandbox: a seccomp filter replaces --disable-userns, and bwrap is not
        setuid root (which grants --cap-add to root only)."""
        if seccomp_program() is None:
            return False
        try:
            return not os.stat(self.find_bwrap()).st_mode & stat.S_ISUID
        except (SandboxUnavailableError, OSError):
            return True  # no bwrap: nothing starts anyway

    def seccomp(self) -> Optional[bytes]:
        """The seccomp filter the sandbox runs under (None: none, and bwrap's
        --disable-userns instead): no new user namespaces, and memfd_create
        and shmget refused where no cgroup bounds memory (see :meth:`enforcement`)."""
        return seccomp_program(memfd=self.memory is not None and not (self._cgroup is not None
                                                                      and self._cgroup.memory))

    def unenforced(self) -> List[str]:
        """The limits set that nothing enforces here (see :meth:`enforcement`)."""
        return [name for name, how in self.enforcement().items() if how.startswith("NOT ENFORCED")]

    def rlimits(self) -> Dict[str, int]:
        """The resource limits the zygote sets on itself (inherited by every worker)."""
        cgroup = self._cgroup
        limits: Dict[str, int] = {}
        if self.memory is not None and not (cgroup is not None and cgroup.memory):
            limits["RLIMIT_AS"] = self.memory
        if self.processes is not None and not (cgroup is not None and cgroup.pids) and os.getuid() != 0:
            limits["RLIMIT_NPROC"] = self.processes
        if self.cpu_time is not None:
            limits["RLIMIT_CPU"] = self.cpu_time
        if self.file_size is not None:
            limits["RLIMIT_FSIZE"] = self.file_size
        return limits

    # -- the command line ---------------------------------------------------

    def find_bwrap(self) -> str:
        """The bwrap binary's path, or SandboxUnavailableError saying how to install it."""
        found = shutil.which(self.bwrap or "bwrap")
        if found is None:
            raise SandboxUnavailableError("bubblewrap (bwrap) was not found%s: %s"
                                          % (" at %r" % self.bwrap if self.bwrap else " on PATH", INSTALL_HINT))
        return found

    def zygote_env(self) -> Dict[str, str]:
        """The zygote's own environment: the workers' but with ``HOME=/`` (workers get theirs at setup)."""
        env = self.env
        env["HOME"] = "/"
        return env

    def host_import_paths(self) -> List[str]:
        """Where the host imports Python code from, existing or not: this
        process's ``sys.path`` (``""``: the current directory), the user site
        of its HOME (which the next host start reads if it exists) and
        interp's package."""
        entries = [*sys.path, INTERP_DIR]
        try:
            entries.append(site.getusersitepackages())
        except AttributeError:  # an old virtualenv's site module
            pass
        found = []
        for entry in entries:
            path = os.path.abspath(entry or os.curdir)
            real = os.path.realpath(path)
            found.append(real)
            if real != path:
                found.append(path)  # as the host names it (a symlink on the way is checked too)
        return found

    def read_only_mounts(self, mounts: Sequence[str] = ()) -> List[str]:
        """The host paths shown read-only, in the order they are bound; they
        are bound after the writable ones so that they stay read-only
        wherever they lie. SandboxError for a layout that cannot be made safe:
        a writable path that holds your home directory, that the host imports
        Python code from (its launch directory, a ``sys.path`` entry, or a
        package-named directory below one) or that holds such a path not made
        yet, or one inside the Python installation or a ``read_only`` path."""
        writable = [real_path(path) for path in (self.workspace, *self.writable)]
        fixed = [*self.python_paths(), INTERP_DIR, *map(real_path, mounts)]
        imports = self.host_import_paths()
        for path in writable:
            for home in homes():
                if not inside(home, [path]):
                    continue
                raise SandboxError("%s cannot be writable in the sandbox: it holds your home directory %s, where "
                                   "the code could plant files your shell and Python run at their next start "
                                   "(.bashrc, .profile, a .pth in ~/.local)" % (path, home))
            for imported in imports:
                if importable(path, imported):
                    raise SandboxError(
                        "%s cannot be writable in the sandbox: the host imports Python code from %s (a file "
                        "the code wrote there would run unsandboxed at the next host start); choose another "
                        "directory, or start interp with the 'interp' command rather than 'python -m interp' "
                        "from inside it" % (path, imported))
                if inside(imported, [path]) and not os.path.exists(imported):
                    raise SandboxError("%s cannot be writable in the sandbox: the host would import Python code "
                                       "from %s, which the code could create there" % (path, imported))
                if inside(imported, [path]) and os.path.realpath(imported) != imported:
                    raise SandboxError("%s cannot be writable in the sandbox: the host imports Python code from "
                                       "%s through a symlink there, which the code could replace"
                                       % (path, imported))
            for shown in [*fixed, *self.read_only]:
                if inside(path, [os.path.realpath(shown)]) and path not in ("/",):
                    raise SandboxError("%s cannot be writable in the sandbox: it lies inside %s, which is "
                                       "shown read-only" % (path, shown))
        order: List[str] = []
        shown_dirs = ["/usr", *SYSTEM_DIRS]
        for path in [*fixed, *self.read_only]:
            if not inside(path, shown_dirs) or inside(path, writable):
                order.append(path)
                shown_dirs.append(path)
        for imported in imports:  # a venv's site-packages, an editable checkout's src/, a zip in the workspace
            if inside(imported, writable) and imported not in order and real_path(imported) == imported:
                order.append(imported)
        return order

    def command(self, argv: Sequence[str], mounts: Sequence[str] = (), seccomp_fd: Optional[int] = None
                ) -> List[str]:
        """The full command running ``argv`` inside this sandbox (``mounts``:
        more host paths to show read-only, such as interp's worker files;
        ``seccomp_fd``: an fd holding :meth:`seccomp_program`, passed to bwrap).
        Starts with a small shell that enters the sandbox's cgroup when it has one."""
        bwrap = self.find_bwrap()
        args = [bwrap, "--unshare-all", "--unshare-user"]  # new user namespaces: see seccomp_fd below
        if self.network:
            args.append("--share-net")
        args += ["--die-with-parent", "--new-session", "--cap-drop", "ALL"]
        if self.seal():  # kept by the zygote only until it has sealed the sandbox (see seal())
            args += ["--cap-add", "CAP_SYS_ADMIN", "--cap-add", "CAP_SETPCAP"]
        args += ["--as-pid-1",
                 "--hostname", "sandbox", "--ro-bind", "/usr", "/usr"]
        for path in SYSTEM_DIRS:
            if os.path.islink(path):
                args += ["--symlink", os.readlink(path), path]
            elif os.path.isdir(path):
                args += ["--ro-bind", path, path]
        for entry in ETC_ENTRIES:
            path = os.path.join("/etc", entry)
            if os.path.lexists(path):
                args += ["--ro-bind-try", path, path]
        # /proc read-only: a sandbox started by root still runs as uid 0 (with
        # no capability), and the kernel lets uid 0 write sysctls such as
        # kernel.core_pattern by their owner bits. /dev read-only but for a
        # sized /dev/shm (both were tmpfs without a size).
        args += ["--proc", "/proc", "--remount-ro", "/proc"]
        if self.seal():
            # bwrap's --dev mounts devpts from a second, nested user namespace
            # (for an unprivileged caller), where the zygote's capability does
            # not reach the mounts: the same /dev, built here, and devpts
            # mounted by the zygote while it seals the sandbox.
            args += ["--tmpfs", "/dev"]
            for node in DEV_NODES:
                args += ["--dev-bind", "/dev/" + node, "/dev/" + node]
            for name, target in DEV_LINKS:
                args += ["--symlink", target, "/dev/" + name]
            args += ["--dir", "/dev/pts"]
        else:
            args += ["--dev", "/dev"]
        for target in ("/dev/shm", "/tmp"):
            if self.tmp_size is not None:
                args += ["--size", str(self.tmp_size)]
            args += ["--perms", "1777", "--tmpfs", target]
        args += ["--remount-ro", "/dev"]
        if self._given_workspace is None:  # the temporary workspace: a bounded tmpfs, nothing on the host
            args += ["--size", str(self.workspace_size), "--perms", "0700", "--tmpfs", self.workspace]
        else:
            args += ["--bind", self.workspace, self.workspace]
        for path in self.writable:
            args += ["--bind", path, path]
        # Read-only after read-write: bwrap mounts in order, and a later bind
        # covers an earlier one, so what is promised read-only (the Python
        # installation, interp's files, read_only=, the host's other import
        # directories) stays so even inside the workspace (a venv in it).
        for path in self.read_only_mounts(mounts):
            args += ["--ro-bind", path, path]
        # the root itself is a tmpfs bwrap made: read-only, or it would be a /tmp without a size
        # the zygote starts in / with HOME=/ (nothing there is the code's to plant)
        args += ["--remount-ro", "/", "--chdir", "/", "--clearenv"]
        for key, value in self.zygote_env().items():
            args += ["--setenv", key, value]
        if seccomp_fd is not None:
            args += ["--seccomp", str(seccomp_fd)]
        else:  # no filter to refuse user namespaces: bwrap's nested one (a zygote that must seal then fails closed)
            args.insert(args.index("--unshare-user") + 1, "--disable-userns")
        args += ["--", *argv]
        if self._cgroup is not None:
            return self._cgroup.enter_command() + args
        return args

    # -- life cycle ------------------------------------------------------------

    def acquire(self) -> None:
        """Claim this sandbox for one interpreter (ValueError if another has it)
        and set up its cgroup when one can be made."""
        with self._lock:
            if self._in_use:
                raise ValueError("this Sandbox already serves an interpreter: give each interpreter its own")
            self._in_use = True
        try:
            self.read_only_mounts()  # SandboxError now for a layout that cannot be made safe
        except BaseException:
            with self._lock:
                self._in_use = False
            raise
        cgroup = _Cgroup.probe()
        if cgroup is not None and (self.memory is not None or self.processes is not None):
            cgroup.remove_stale()
            self._cgroup = cgroup.create(self.memory, self.processes)
        self._started = True

    def release(self) -> None:
        """After the interpreter closed: remove the cgroup (killing anything
        left in it) and a temporary workspace."""
        with self._lock:
            cgroup, self._cgroup = self._cgroup, None
            temporary, self._temporary = self._temporary, None
            if temporary is not None:
                self._workspace = None
            self._in_use = self._started = False
        if cgroup is not None:
            cgroup.destroy()
        if temporary is not None:
            left = remove_tree(temporary)
            if left:
                warnings.warn("interp could not remove the sandbox's temporary workspace %s: %s"
                              % (temporary, left), RuntimeWarning, stacklevel=2)

    def diagnose(self, stderr: str) -> SandboxUnavailableError:
        """The error for a sandbox whose zygote did not start (bwrap said ``stderr``)."""
        said = stderr.strip()
        reasons = []
        if _read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == "1" and os.getuid() != 0:
            reasons.append("AppArmor forbids unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_"
                           "userns=1, Ubuntu 23.10+): allow them with 'sudo sysctl -w kernel.apparmor_restrict_"
                           "unprivileged_userns=0' or give bwrap an AppArmor profile with 'userns,'")
        if _read("/proc/sys/kernel/unprivileged_userns_clone") == "0" and os.getuid() != 0:
            reasons.append("unprivileged user namespaces are disabled: 'sudo sysctl -w "
                           "kernel.unprivileged_userns_clone=1'")
        if _read("/proc/sys/user/max_user_namespaces") == "0":
            reasons.append("user namespaces are disabled: 'sudo sysctl -w user.max_user_namespaces=15000'")
        if not reasons and said.startswith(FILE_FAILURES):
            reasons.append("bubblewrap could not set up the sandbox's files: a path it shows (the workspace, "
                           "read_only=, writable=, the Python installation) is missing, changed since, or leads "
                           "through a symlink to where it cannot be shown")
        if not reasons:
            reasons.append("bubblewrap could not start the sandbox (in a container, the container may "
                           "forbid namespaces: run it with a seccomp profile that allows them)")
        return SandboxUnavailableError("the sandbox could not start: %s%s" % (
            "; ".join(reasons), " (bwrap said: %s)" % said[:2000] if said else ""))


def sandbox_option(value: Union[Sandbox, bool, None]) -> Optional[Sandbox]:
    """A constructor's ``sandbox=`` argument as a Sandbox (or None)."""
    if value is None or value is False:
        return None
    if value is True:
        return Sandbox()
    if not isinstance(value, Sandbox):
        raise TypeError("sandbox must be a Sandbox, True or None, not %s" % type(value).__name__)
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command lines' ``--sandbox [--workspace DIR] [--network]`` options."""
    group = parser.add_argument_group("sandbox (bubblewrap; see SECURITY.md)")
    group.add_argument("--sandbox", action="store_true",
                       help="run the code in a sandbox: no network, no access to your files outside "
                            "the workspace, the system and Python read-only")
    group.add_argument("--workspace", metavar="DIR",
                       help="with --sandbox: the directory the code may read and write, its cwd and HOME "
                            "(default: a temporary one, removed on exit)")
    group.add_argument("--network", action="store_true", help="with --sandbox: give the code the host's network")


def from_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Optional[Sandbox]:
    """The Sandbox the options of :func:`add_arguments` ask for (None: no sandbox)."""
    if not args.sandbox:
        if args.workspace is not None or args.network:
            parser.error("--workspace and --network go with --sandbox")
        return None
    try:
        sandbox = Sandbox(args.workspace, network=args.network)
        sandbox.read_only_mounts()  # a launch directory as the workspace is refused here
        return sandbox
    except (OSError, ValueError) as exc:
        parser.error("--workspace: %s" % exc)
    return None  # parser.error() does not return
