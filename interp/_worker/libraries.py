"""Libraries configured as they are in a Jupyter kernel.

Some libraries ask whether they run in a terminal and size their output
to it. In Jupyter they learn they do not; in interp's worker (no IPython,
a ``__main__`` without ``__file__``) they conclude they do. Each patch here
runs once, right after the library is imported (see ``notebook.AfterImport``),
and only changes a setting the user has not changed. Standard library only.
"""

from __future__ import annotations

from types import ModuleType
from typing import Callable, Dict

#: pandas' default for display.max_columns in a Jupyter kernel (in a terminal it is 0: fit the terminal).
PANDAS_MAX_COLUMNS = 20


def pandas_as_in_jupyter(pandas: ModuleType) -> None:
    """Show up to 20 columns, wrapped at display.width (80) with a ``\\``, as
    Jupyter does, instead of cutting the frame to the terminal with ``...``."""
    if pandas.get_option("display.max_columns") == 0:
        pandas.set_option("display.max_columns", PANDAS_MAX_COLUMNS)


PATCHES: Dict[str, Callable[[ModuleType], None]] = {
    "pandas": pandas_as_in_jupyter,
}
