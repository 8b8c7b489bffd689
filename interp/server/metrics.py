"""The HTTP server's counters, shown by ``GET /metrics`` in the Prometheus
text exposition format (version 0.0.4)."""

from __future__ import annotations

import bisect
import threading
from typing import Dict, List, Tuple

#: Upper bounds (seconds) of the run-duration histogram's buckets.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0)
#: How a run ended, as the ``outcome`` label of ``interp_runs_total``.
OUTCOMES = ("ok", "error", "timeout", "worker_died", "restarted", "deleted", "cancelled", "failed")


class ServerMetrics:
    """Thread-safe counters of one server; :meth:`render` formats them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.runs: Dict[str, int] = dict.fromkeys(OUTCOMES, 0)
        self._buckets: List[int] = [0] * len(DURATION_BUCKETS)
        self._duration_sum = 0.0
        self._duration_count = 0
        self.timeouts = 0
        self.worker_deaths = 0
        self.bytes_out = 0
        self.contexts_created = 0
        self.contexts_expired = 0
        self.requests: Dict[int, int] = {}

    def run_ended(self, outcome: str, seconds: float, *, timed_out: bool = False, died: bool = False) -> None:
        """Count one finished run (``outcome`` is one of OUTCOMES)."""
        with self._lock:
            self.runs[outcome] = self.runs.get(outcome, 0) + 1
            index = bisect.bisect_left(DURATION_BUCKETS, seconds)
            if index < len(self._buckets):
                self._buckets[index] += 1
            self._duration_sum += seconds
            self._duration_count += 1
            self.timeouts += timed_out
            self.worker_deaths += died

    def sent(self, count: int) -> None:
        """Count ``count`` bytes written to clients."""
        with self._lock:
            self.bytes_out += count

    def answered(self, status: int) -> None:
        with self._lock:
            self.requests[status] = self.requests.get(status, 0) + 1

    def context_created(self) -> None:
        with self._lock:
            self.contexts_created += 1

    def context_expired(self) -> None:
        with self._lock:
            self.contexts_expired += 1

    def render(self, contexts_alive: int) -> str:
        """Every metric in the Prometheus text format."""
        with self._lock:
            lines: List[str] = []

            def metric(name: str, kind: str, help_text: str, samples: List[Tuple[str, float]]) -> None:
                lines.append("# HELP %s %s" % (name, help_text))
                lines.append("# TYPE %s %s" % (name, kind))
                lines.extend("%s%s %s" % (name, labels, _number(value)) for labels, value in samples)

            metric("interp_contexts", "gauge", "Contexts alive (created by clients; the default context "
                   "is not counted).", [("", contexts_alive)])
            metric("interp_contexts_created_total", "counter", "Contexts created.",
                   [("", self.contexts_created)])
            metric("interp_contexts_expired_total", "counter", "Contexts deleted after --idle-timeout.",
                   [("", self.contexts_expired)])
            metric("interp_runs_total", "counter", "Runs that ended, by outcome.",
                   [('{outcome="%s"}' % name, count) for name, count in self.runs.items()])
            cumulative = 0
            samples: List[Tuple[str, float]] = []
            for bound, count in zip(DURATION_BUCKETS, self._buckets):
                cumulative += count
                samples.append(('_bucket{le="%s"}' % _number(bound), cumulative))
            samples += [('_bucket{le="+Inf"}', self._duration_count), ("_sum", self._duration_sum),
                        ("_count", self._duration_count)]
            lines.append("# HELP interp_run_duration_seconds How long runs took, from start to end.")
            lines.append("# TYPE interp_run_duration_seconds histogram")
            lines.extend("interp_run_duration_seconds%s %s" % (suffix, _number(value)) for suffix, value in samples)
            metric("interp_timeouts_total", "counter", "Runs that exceeded their timeout.", [("", self.timeouts)])
            metric("interp_worker_deaths_total", "counter", "Runs whose worker process died.",
                   [("", self.worker_deaths)])
            metric("interp_http_response_bytes_total", "counter", "Bytes of responses written to clients.",
                   [("", self.bytes_out)])
            metric("interp_http_requests_total", "counter", "Requests answered, by status code.",
                   [('{code="%d"}' % code, count) for code, count in sorted(self.requests.items())])
        return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))
