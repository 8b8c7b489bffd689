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
import struct
import sys
import tempfile
import threading
import time
import uuid
import warnings
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from .errors import InvalidCwdError, SandboxError, SandboxUnavailableError

PathLike = Union[str, "os.PathLike[str]"]

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
INTERP_DIR = os.path.dirname(os.path.abspath(__file__))

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

INSTALL_HINT = ("install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install "
                "bubblewrap; Arch: pacman -S bubblewrap), or give its path as Sandbox(bwrap=...)")


def _limit(name: str, value: Optional[float]) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError("%s must be a positive number or None, not %r" % (name, value))
    return int(value)


def _paths(name: str, values: Iterable[PathLike]) -> Tuple[str, ...]:
    if isinstance(values, (str, bytes)):
        raise TypeError("%s must be a list of paths, not a single string" % name)
    found = []
    for value in values:
        path = os.path.abspath(os.fspath(value))
        if not os.path.exists(path):
            raise ValueError("%s: %s does not exist" % (name, path))
        found.append(path)
    return tuple(found)


def _importable(path: str, imported: str) -> bool:
    """True if a file made in ``path`` could be imported from the sys.path
    entry ``imported``: ``path`` is it, or lies below it in a directory whose
    name is a package name (``imported/name/...``: ``import name``)."""
    if path == imported:
        return True
    if not _inside(path, [imported]):
        return False
    return os.path.relpath(path, imported).split(os.sep)[0].isidentifier()


def _inside(path: str, roots: Iterable[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


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
            path = os.path.abspath(os.fspath(workspace))
            if not os.path.isdir(path):
                raise InvalidCwdError(2, "sandbox workspace is not a directory", path)
            self._given_workspace: Optional[str] = path
        else:
            self._given_workspace = None
        self.read_only = _paths("read_only", read_only)
        self.writable = _paths("writable", writable)
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
        self.python = python or sys.executable
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
                self._temporary = tempfile.mkdtemp(prefix="interp-sandbox-")
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
        """``path`` if the code inside can see it, else InvalidCwdError."""
        if not _inside(path, self.visible()):
            raise InvalidCwdError(2, "context cwd is outside the sandbox (its workspace is %s; add the "
                                  "directory to Sandbox(writable=...) or read_only=...)" % self.workspace, path)
        return path

    def python_paths(self) -> List[str]:
        """The Python installation's directories, shown read-only."""
        paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
                 os.path.dirname(os.path.dirname(os.path.realpath(self.python)))}
        try:
            paths.update(site.getsitepackages())
            paths.add(site.getusersitepackages())
        except AttributeError:  # an old virtualenv's site module
            pass
        return sorted(path for path in paths if path and os.path.isdir(path))

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
        if self.inodes is not None:
            if seccomp_program() is not None:
                report["inodes"] = ("nr_inodes of /tmp, /dev/shm and the temporary workspace, each (set by the "
                                    "zygote before it drops its last capability)")
            else:
                report["inodes"] = ("NOT ENFORCED: no seccomp filter is known for %s, so bwrap's --disable-userns "
                                    "is used and the zygote cannot remount the tmpfs mounts" % platform.machine())
        if self._given_workspace is None:
            report["workspace"] = "tmpfs of workspace_size bytes (the temporary workspace)"
        return report

    def seal(self) -> Dict[str, object]:
        """What the zygote does with the one capability it starts with
        (CAP_SYS_ADMIN in the sandbox's user namespace) before dropping every
        capability: remount the tmpfs mounts with their inode bound."""
        if self.inodes is None or seccomp_program() is None:
            return {}
        size = [] if self.tmp_size is None else ["size=%d" % self.tmp_size]
        remount = [[target, ",".join([*size, "nr_inodes=%d" % self.inodes, "mode=1777"])]
                   for target in ("/tmp", "/dev/shm")]
        if self._given_workspace is None:
            remount.append([self.workspace, "size=%d,nr_inodes=%d,mode=0700" % (self.workspace_size, self.inodes)])
        return {"remount": remount, "devpts": "/dev/pts"}

    def seccomp(self) -> Optional[bytes]:
        """The seccomp filter the sandbox runs under (None: none, and bwrap's
        --disable-userns instead): no new user namespaces, and memfd_create
        refused where no cgroup bounds memory (see :meth:`enforcement`)."""
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

    def host_import_dirs(self) -> List[str]:
        """Directories the host imports Python code from: this process's
        ``sys.path`` (``""``: the current directory) and interp's package."""
        found = []
        for entry in [*sys.path, INTERP_DIR]:
            path = os.path.abspath(entry or os.curdir)
            if os.path.isdir(path):
                found.append(os.path.realpath(path))
        return found

    def read_only_mounts(self, mounts: Sequence[str] = ()) -> List[str]:
        """The host paths shown read-only, in the order they are bound; they
        are bound after the writable ones so that they stay read-only
        wherever they lie. SandboxError for a layout that cannot be made safe:
        a writable path that the host imports Python code from (its launch
        directory, a ``sys.path`` entry), or one inside the Python installation
        or a ``read_only`` path."""
        writable = [os.path.realpath(path) for path in (self.workspace, *self.writable)]
        fixed = [*self.python_paths(), INTERP_DIR, *mounts]
        for path in writable:
            for imported in self.host_import_dirs():
                if _importable(path, imported):
                    raise SandboxError(
                        "%s cannot be writable in the sandbox: the host imports Python code from %s (a file "
                        "the code wrote there would run unsandboxed at the next host start); choose another "
                        "directory, or start interp with the 'interp' command rather than 'python -m interp' "
                        "from inside it" % (path, imported))
            for shown in [*fixed, *self.read_only]:
                if _inside(path, [os.path.realpath(shown)]) and path not in ("/",):
                    raise SandboxError("%s cannot be writable in the sandbox: it lies inside %s, which is "
                                       "shown read-only" % (path, shown))
        order: List[str] = []
        shown_dirs = ["/usr", *SYSTEM_DIRS]
        for path in [*fixed, *self.read_only]:
            if not _inside(path, shown_dirs) or _inside(path, writable):
                order.append(path)
                shown_dirs.append(path)
        for imported in self.host_import_dirs():  # e.g. an editable checkout's src/ in the workspace
            if _inside(imported, writable) and imported not in order:
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
        if not reasons:
            reasons.append("bubblewrap could not start the sandbox (in a container, the container may "
                           "forbid namespaces: run it with a seccomp profile that allows them)")
        return SandboxUnavailableError("the sandbox could not start: %s%s" % (
            "; ".join(reasons), " (bwrap said: %s)" % said[:2000] if said else ""))


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
#: numbers of (clone, unshare, clone3, setns, memfd_create) (new user namespaces are refused:
#: the zygote keeps CAP_SYS_ADMIN in the sandbox's own user namespace until
#: it seals the sandbox, so bwrap's --disable-userns, a nested namespace, is
#: not used) and memfd_create.
_SYSCALLS = {
    "x86_64": ((0xC000003E, (56, 272, 435, 308, 319)),
               (0x40000003, (120, 310, 435, 346, 356))),
    "aarch64": ((0xC00000B7, (220, 97, 435, 268, 279)),
                (0x40000028, (120, 337, 435, 375, 385))),
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
    sized /dev/shm or /tmp)."""
    arches = _SYSCALLS.get(machine or platform.machine())
    if arches is None:
        return None
    eperm, enosys = _ERRNO | 1, _ERRNO | 38
    program: List[Tuple[int, int, int, int]] = [(_LD, 0, 0, 4)]  # A = arch
    for arch, (clone, unshare, clone3, setns, memfd_create) in arches:
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
            rules.append((memfd_create, [(_RET, 0, 0, enosys)]))
        for number, body in rules:
            block.append((_JEQ, 0, len(body), number))
            block += body
        block.append((_RET, 0, 0, _ALLOW))
        program.append((_JEQ, 0, len(block), arch))
        program += block
    program.append((_RET, 0, 0, enosys))  # an architecture the filter does not know
    return b"".join(struct.pack("=HBBI", *instruction) for instruction in program)


def sandbox_option(value: Union[Sandbox, bool, None]) -> Optional[Sandbox]:
    """A constructor's ``sandbox=`` argument as a Sandbox (or None)."""
    if value is None or value is False:
        return None
    if value is True:
        return Sandbox()
    if not isinstance(value, Sandbox):
        raise TypeError("sandbox must be a Sandbox, True or None, not %s" % type(value).__name__)
    return value


def _read(path: str) -> Optional[str]:
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return None


def _kernel() -> Tuple[int, int]:
    try:
        major, minor = os.uname().release.split(".")[:2]
        return int(major), int("".join(c for c in minor if c.isdigit()) or 0)
    except ValueError:
        return (0, 0)


#: Cgroups made for sandboxes are named so; empty ones older than
#: STALE_CGROUP_AGE seconds are left-overs of parents that were killed.
CGROUP_PREFIX = "interp-sandbox-"
STALE_CGROUP_AGE = 60.0


class _Cgroup:
    """A cgroup made for one sandbox: v2 (one directory) or v1 (one per
    controller), under this process's own cgroup, where we may write."""

    def __init__(self, version: str, dirs: Dict[str, str]) -> None:
        self.version = version
        self.dirs = dirs  # controller ("memory", "pids") -> directory (the parent's, until create())

    @property
    def memory(self) -> bool:
        return "memory" in self.dirs

    @property
    def pids(self) -> bool:
        return "pids" in self.dirs

    @staticmethod
    def probe() -> Optional[_Cgroup]:
        """Where a sandbox's cgroup could be made, or None."""
        own = _read("/proc/self/cgroup") or ""
        v1: Dict[str, str] = {}
        v2_path = None
        for line in own.splitlines():
            _id, controllers, path = line.split(":", 2)
            if controllers == "":
                v2_path = path
            for controller in ("memory", "pids"):
                if controller in controllers.split(","):
                    v1[controller] = os.path.join("/sys/fs/cgroup", controller, path.lstrip("/"))
        if v2_path is not None and os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
            base = os.path.join("/sys/fs/cgroup", v2_path.lstrip("/"))
            enabled = (_read(os.path.join(base, "cgroup.subtree_control")) or "").split()
            unified: Dict[str, str] = {c: base for c in ("memory", "pids") if c in enabled}
            if unified and os.access(base, os.W_OK):
                return _Cgroup("v2", unified)
        dirs: Dict[str, str] = {c: d for c, d in v1.items() if os.path.isdir(d) and os.access(d, os.W_OK)}
        return _Cgroup("v1", dirs) if dirs else None

    def remove_stale(self, min_age: float = STALE_CGROUP_AGE) -> None:
        """Remove the empty cgroups that sandboxes of parents killed by SIGKILL
        left behind here (older than ``min_age`` seconds: a younger one may be
        a sandbox still starting)."""
        now = time.time()
        for parent in set(self.dirs.values()):
            try:
                names = [name for name in os.listdir(parent) if name.startswith(CGROUP_PREFIX)]
            except OSError:
                continue
            for name in names:
                path = os.path.join(parent, name)
                try:
                    if now - os.stat(path).st_mtime >= min_age and not (_read(os.path.join(path, "cgroup.procs"))
                                                                         or "").strip():
                        os.rmdir(path)  # fails harmlessly if a process entered meanwhile
                except OSError:
                    pass

    def create(self, memory: Optional[int], processes: Optional[int]) -> Optional[_Cgroup]:
        """Make this sandbox's cgroup with those limits (None if it cannot be made)."""
        name = CGROUP_PREFIX + uuid.uuid4().hex[:12]
        made: Dict[str, str] = {}
        try:
            for controller, parent in self.dirs.items():
                path = os.path.join(parent, name)
                if path not in made.values():
                    os.mkdir(path)
                made[controller] = path
            if memory is not None and "memory" in made:
                if self.version == "v2":
                    _write(os.path.join(made["memory"], "memory.max"), str(memory))
                    _write(os.path.join(made["memory"], "memory.swap.max"), "0", required=False)
                else:
                    _write(os.path.join(made["memory"], "memory.limit_in_bytes"), str(memory))
                    _write(os.path.join(made["memory"], "memory.memsw.limit_in_bytes"), str(memory), required=False)
            if processes is not None and "pids" in made:
                _write(os.path.join(made["pids"], "pids.max"), str(processes))
        except OSError:
            _Cgroup(self.version, made).destroy()
            return None
        return _Cgroup(self.version, made)

    def enter_command(self) -> List[str]:
        """A prefix that moves the command into this cgroup, then runs it."""
        procs = sorted({os.path.join(path, "cgroup.procs") for path in self.dirs.values()})
        script = "".join('echo $$ > "%s" && ' % path for path in procs) + 'exec "$@"'
        return ["/bin/sh", "-c", script, "sh"]

    def destroy(self) -> None:
        """Kill whatever is left in the cgroup and remove it."""
        for path in sorted(set(self.dirs.values())):
            if not os.path.isdir(path):
                continue
            if not _write(os.path.join(path, "cgroup.kill"), "1", required=False):
                for _ in range(10):
                    pids = (_read(os.path.join(path, "cgroup.procs")) or "").split()
                    if not pids:
                        break
                    for pid in pids:
                        try:
                            os.kill(int(pid), 9)
                        except (OSError, ValueError):
                            pass
            for _ in range(100):
                try:
                    os.rmdir(path)
                    break
                except OSError:
                    threading.Event().wait(0.01)  # the killed processes are still exiting


def _write(path: str, text: str, required: bool = True) -> bool:
    try:
        with open(path, "w") as handle:
            handle.write(text)
        return True
    except OSError:
        if required:
            raise
        return False


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
