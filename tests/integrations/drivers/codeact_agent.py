"""langgraph-codeact's create_codeact with make_eval_fn and a scripted model."""

from __future__ import annotations

import threading
from typing import Any, Dict, List

from _common import main
from _lcmodel import Scripted
from langgraph_codeact import create_codeact

from interp import CodeInterpreter
from interp.integrations.langgraph import make_eval_fn


def block(code: str) -> str:
    return "Running it.\n```python\n%s\n```" % code


STEPS = [
    block("items = [1]\nseen = {1}\nprint('rate', rate)"),
    block("seen.add(2)\nitems.append(2)\nprint(sorted(seen), items, record(5))"),
    block("record('five')"),
    block("1/0"),
    block("import time\ntime.sleep(60)"),
    block("print(items, sorted(seen))"),
    "All done.",
]


class HostOnly:
    """A class of the host's __main__: the worker cannot unpickle it."""


def scenario(ci: CodeInterpreter) -> Dict[str, Any]:
    ledger: List[int] = []  # host state the tool closes over

    def record(amount: int) -> int:
        """Records an amount on the host's ledger and returns the total."""
        if not isinstance(amount, int):
            raise TypeError("amount must be an int")
        ledger.append(amount)
        return sum(ledger)

    model = Scripted(replies=list(STEPS), seen=[])
    agent = create_codeact(model, [record], make_eval_fn(ci, timeout=3)).compile()
    out = agent.invoke({"messages": [("user", "go")], "context": {"rate": 3, "host_only": HostOnly(),
                                                                   "lock": threading.Lock()}})
    return {"seen": model.seen, "ledger": ledger, "context": {k: v for k, v in out["context"].items()
                                                              if not callable(v)},
            "final": out["messages"][-1].content}


if __name__ == "__main__":
    main(scenario)
