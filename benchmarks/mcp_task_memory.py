"""What MCP tasks keep after they end (issue 21, item 4): six 2025-11-25 tasks
each print 16 MiB and ask for ``output_limit: 0``; once they ended and their
results were fetched, print the bytes of results the task table keeps (as
JSON) and the growth of this process's RSS (which also holds memory the
allocator did not give back, so it is noisy; the kept bytes are the figure).

    python3 benchmarks/mcp_task_memory.py [OPERATOR_LIMIT]   (default 20000; 0: no limit)

Standalone (not part of ``python -m benchmarks``): it measures a bound, not a speed.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
from typing import Any, Dict, List

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from interp import CodeInterpreter
from interp.mcp.core import MCPCore, Session

TASKS = 6
PRINT = "print('x' * (16 << 20))"


def rss_mib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) // 1024 for line in status if line.startswith("VmRSS"))


def main() -> None:
    operator = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    with CodeInterpreter() as ci:
        core = MCPCore(ci, output_limit=operator)
        session = Session("bench", "2025-11-25")
        session.initialized = True
        replies: List[Any] = []
        answered = threading.Event()

        def reply(message: Any) -> None:
            replies.append(message)
            answered.set()

        def call(number: int, method: str, params: Dict[str, Any]) -> Any:
            answered.clear()
            core.handle({"jsonrpc": "2.0", "id": number, "method": method, "params": params}, session, reply,
                        lambda note: None)
            assert answered.wait(300), "no answer"
            return replies[-1]

        ci.run_code("1")
        gc.collect()
        before = rss_mib()
        ids = [call(i, "tools/call", {"name": "run_code", "arguments": {"code": PRINT, "output_limit": 0},
                                      "task": {}})["result"]["task"]["taskId"] for i in range(TASKS)]
        for i, task_id in enumerate(ids):
            call(100 + i, "tasks/result", {"taskId": task_id})
        replies.clear()
        core.wait_idle()
        gc.collect()
        kept = sum(len(json.dumps(task.result)) for task in core.tasks._tasks.values() if task.result is not None)
        print("operator --output-limit %d: %d tasks of 16 MiB keep %.1f MiB of results (JSON); RSS grew %d MiB"
              % (operator, TASKS, kept / 2**20, rss_mib() - before))


if __name__ == "__main__":
    main()
