"""The engine's API tests, run against RemoteCodeInterpreter (issue 15).

The same test functions as tests/test_engine.py and tests/test_semantics.py
(imported, not copied), with the ``ci`` fixture replaced: here it is a
RemoteCodeInterpreter talking over real loopback sockets to a real
``InterpHTTPServer`` served in this process, so the workers are this
process's children and the tests' process checks still hold. Tests that
cannot apply to a remote client are left out below, each with the reason
(docs/remote.md lists the differences).
"""

from __future__ import annotations

import os

import pytest

import test_engine
import test_semantics
from helpers import worker_processes_of
from interp import RemoteCodeInterpreter
from remote_helpers import ThreadServer

#: Tests that check what only a local interpreter has, and why.
NOT_REMOTE = {
    # constructs its own CodeInterpreter (options of the server, not of a client)
    "test_cwd_given_interpreter_default_and_parent_default": "builds a local CodeInterpreter",
    "test_timeout_kills_code_that_ignores_interrupts": "builds a local CodeInterpreter",
    "test_close_kills_everything_and_rejects_use": "builds a local CodeInterpreter",
    "test_context_manager_closes": "builds a local CodeInterpreter",
    "test_parent_death_leaves_no_orphans": "kills a local parent process",
    "test_infinite_timeout_and_grace": "builds a local CodeInterpreter",
    "test_timeout_shorter_than_start_up_is_a_timeout": "builds a local CodeInterpreter",
    "test_fifo_lock_reports_a_place_in_line_before_waiting": "engine internals",
    # a cwd is a directory of the server's machine, resolved by the server
    "test_relative_cwd_is_made_absolute": "a relative cwd is resolved by the server, in its own directory",
    # callbacks that re-enter their own context: the server queues the inner run behind
    # the outer one, which waits for the callback: refused locally, a deadlock remotely
    "test_callback_running_code_on_its_own_context_is_refused": "re-entry is detected per process",
    # kept-alive connections open and close as they age: the process's fd count moves
    "test_create_delete_cycles_leak_nothing": "pooled connections change the fd count",
    # cancel= closes the stream: the client cannot tell a queued run (result None) from a started one
    "test_cancel_event_drops_a_queued_run": "a cancelled remote run's result is what had arrived",
    # issue 21: the local engine cuts a bundle past max_output as the worker does; the remote
    # client's own results budget is the remote half of item 7
    "test_a_bundle_past_the_results_budget_is_cut_keeping_its_text": "the remote client keeps its own results",
    # InputInterrupted is raised by a local on_input into the local engine (the command line, the shell)
    "test_on_input_can_interrupt_the_codes_input": "InputInterrupted is for local front ends",
}


def _collect(module):
    for name in dir(module):
        if name.startswith("test_") and name not in NOT_REMOTE:
            yield name, getattr(module, name)


globals().update(dict(_collect(test_engine)))
globals().update(dict(_collect(test_semantics)))


class _EngineView:
    """What some tests read of ``ci._engine`` (is a context busy?), from the
    server in this process, by the ids the client uses."""

    def __init__(self, server: ThreadServer) -> None:
        self._server = server

    @property
    def _contexts(self):
        engine = self._server.interpreter._engine
        table = self._server.server.contexts
        return {name: engine.resolve(entry.engine_id) for name, entry in table._entries.items()}

    def resolve(self, ref):
        return self._server.interpreter._engine.resolve(ref)


@pytest.fixture
def ci(tmp_path):
    """A RemoteCodeInterpreter on a fresh server whose contexts start in
    ``tmp_path``; on teardown no worker process may be left."""
    server = ThreadServer(str(tmp_path))
    client = RemoteCodeInterpreter(server.url)
    client._engine = _EngineView(server)  # for the tests that look inside
    try:
        yield client
    finally:
        client.close()
        server.close()
        assert worker_processes_of(os.getpid()) == []
