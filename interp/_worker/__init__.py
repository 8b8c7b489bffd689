"""The worker: the program that runs inside every context's child process.

A private package of small modules, each with one job, loaded by path (see
``interp.process``) into any Python >= 3.9: they import nothing but the
standard library and ``interp/protocol.py``.

- :mod:`.worker`: the main loop, one command at a time (``setup``, ``run``,
  ``complete``), and ``main()``, the entry point of a worker process.
- :mod:`.channel`: the framed channel to the parent, and the relay thread
  that forwards the capture pipes of fds 1 and 2 as output frames.
- :mod:`.stdio`: fds 0, 1 and 2 as user code sees them, and their repair;
  :mod:`.flushing`: when the buffered sys.stdout / sys.stderr are flushed.
- :mod:`.interpreter`: compiling and running cells, recording errors.
- :mod:`.signals`: user code's signal handlers run only while user code runs.
- :mod:`.display`: MIME bundles of results; :mod:`.figures`: matplotlib.
- :mod:`.completion`: names and attributes for ``complete()``.
- :mod:`.dialect`, :mod:`.magics` (with :mod:`.callers` and :mod:`.timing`)
  and :mod:`.notebook`: notebook-style code.
- :mod:`.proctree` and :mod:`.native`: finding and killing process trees (the
  parent uses them too), and the few C functions reached through ctypes.
- :mod:`.zygote`: the warmed process that forks workers, and the supervisor
  of a spawned one.
"""

try:
    from .. import protocol
except ImportError:  # loaded by path, as the package _interp_worker (see process._LOADER)
    import _interp_protocol as protocol  # type: ignore[import-not-found, no-redef]

__all__ = ["protocol"]
