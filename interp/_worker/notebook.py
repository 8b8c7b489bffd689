"""What notebook code expects to find when it imports: ``IPython.display``
whether or not IPython is installed, IPython's ``display()`` showing results
in interp, and ``PIL.Image.Image.show()`` giving a PNG result.

- :class:`ShimFinder`, last on ``sys.meta_path``, serves the stand-in of
  :mod:`.ipython_display` as ``IPython`` and its display modules, so only
  when no other finder finds the real IPython.
- :class:`AfterImport`, first on ``sys.meta_path``, runs a patch right after
  a module has executed (before whoever imported it sees it): the real
  IPython's ``display`` and ``clear_output`` are replaced where they are
  defined, so every import path of them gets the worker's; Pillow's
  ``ImageShow`` gets a viewer that shows images as results.
"""

from __future__ import annotations

import base64
import io
import sys
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any, Callable, Dict, Optional, Sequence

from . import ipython_display, libraries

Patch = Callable[[ModuleType], None]
Emit = Callable[[Any, bool, Optional[Dict[str, Any]]], None]


class ShimFinder:
    """Finds the stand-in IPython modules (see :mod:`.ipython_display`)."""

    def find_spec(self, name: str, path: Optional[Sequence[str]] = None,
                  target: Optional[ModuleType] = None) -> Optional[ModuleSpec]:
        if name not in ipython_display.MODULES:
            return None
        package = not name.endswith("display") and not name.endswith("display_functions")
        spec = ModuleSpec(name, self, is_package=package)  # type: ignore[arg-type]
        if package:
            spec.submodule_search_locations = []  # only the stand-ins below it exist
        return spec

    def create_module(self, spec: ModuleSpec) -> Optional[ModuleType]:
        return None

    def exec_module(self, module: ModuleType) -> None:
        module.__doc__ = "interp's stand-in for IPython's %s (IPython is not installed)." % module.__name__
        for name in ipython_display.MODULES[module.__name__]:
            setattr(module, name, getattr(ipython_display, name))


class AfterImport:
    """Import hook: ``patches[name](module)`` runs once the module ``name`` has executed."""

    def __init__(self, patches: Dict[str, Patch]) -> None:
        self.patches = patches

    def find_spec(self, name: str, path: Optional[Sequence[str]] = None,
                  target: Optional[ModuleType] = None) -> Optional[ModuleSpec]:
        patch = self.patches.get(name)
        if patch is None:
            return None
        spec = None
        for finder in list(sys.meta_path):
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        loader: Any = spec.loader if spec is not None else None
        if spec is None or loader is None or not hasattr(loader, "exec_module"):
            return spec
        load = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            load(module)
            try:
                patch(module)
            except Exception:  # an unexpected version of the module: leave it as it is
                pass

        loader.exec_module = exec_module
        return spec


def install(display: Callable[..., None], emit: Emit) -> None:
    """Set up the hooks for this worker: ``display`` is its display(),
    ``emit(obj, main, bundle)`` sends a ready result."""
    ipython_display.hook = display

    def patch_ipython(module: ModuleType) -> None:
        """Where IPython defines display() and clear_output(), use the worker's."""
        for name, replacement in (("display", display), ("clear_output", ipython_display.clear_output)):
            original = getattr(module, name, None)
            if getattr(original, "__module__", None) == module.__name__:
                setattr(module, name, replacement)

    def patch_imageshow(module: ModuleType) -> None:
        """Image.show() -> a PNG result, before any other viewer is tried."""

        class ResultViewer(module.Viewer):  # type: ignore[name-defined, misc]
            def show(self, image: Any, **options: Any) -> int:
                emit(image, False, {"image/png": png_base64(image), "text/plain": repr(image)})
                return 1

        module.register(ResultViewer, 0)

    sys.meta_path.insert(0, AfterImport({
        "IPython.core.display_functions": patch_ipython,  # IPython >= 7.23
        "IPython.core.display": patch_ipython,  # older ones defined them here
        "PIL.ImageShow": patch_imageshow,
        **libraries.PATCHES,
    }))
    sys.meta_path.append(ShimFinder())


def png_base64(image: Any) -> str:
    """A Pillow image as base64 PNG (converted to RGBA if PNG cannot hold its mode)."""
    buffer = io.BytesIO()
    try:
        image.save(buffer, format="PNG")
    except (OSError, ValueError, KeyError):
        buffer = io.BytesIO()
        image.convert("RGBA").save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")
