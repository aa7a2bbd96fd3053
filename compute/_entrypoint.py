"""Turning the user's function into the bundle's ``__dlentrypoint__.py``.

Three forms, tried in this order:

* ``import``: ``function`` is a dotted path such as ``"pkg.mod.func"``; the entrypoint
  imports it, so the code must reach the runner through ``include_modules`` or
  ``requirements``.
* ``source``: a plain top-level function whose source stands on its own, except for
  references to imported modules and importable objects, which become import lines.
* ``cloudpickle``: anything else callable (lambdas, closures, nested functions,
  functions using module-level values): the function is pickled by value into
  ``__dlfunction__.pkl``; the runner needs the same Python minor version, and loads it
  with the service's cloudpickle unless the requirements list one.
"""

from __future__ import annotations
import __future__

import builtins
import dis
import importlib
import inspect
import sys
import sysconfig
import textwrap
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cloudpickle

from ._exceptions import BundleError

ENTRYPOINT = "__dlentrypoint__.py"
PICKLE_FILE = "__dlfunction__.pkl"
PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"

_PICKLE_LOADER = f"""import pathlib
import pickle

with open(pathlib.Path(__file__).with_name({PICKLE_FILE!r}), "rb") as _file:
    main = pickle.load(_file)
"""
_FUTURE_ANNOTATIONS = __future__.annotations.compiler_flag
_SIMPLE_DEFAULTS = (type(None), bool, int, float, complex, str, bytes)


@dataclass(frozen=True)
class Entrypoint:
    """The entrypoint of a bundle.

    Attributes:
        kind: ``"import"``, ``"source"`` or ``"cloudpickle"``.
        source: The text of ``__dlentrypoint__.py``.
        files: Further files for the bundle root, by name.
    """

    kind: str
    source: str
    files: dict[str, bytes] = field(default_factory=dict)


def make_entrypoint(function: Callable[..., Any] | str) -> Entrypoint:
    """Build the entrypoint for a callable or a dotted path.

    Raises:
        BundleError: The path does not resolve to a callable, or the object is not callable.
    """
    if isinstance(function, str):
        return _import_entrypoint(function)
    if not callable(function):
        raise BundleError(f"Compute main function must be callable: {function!r}")
    source = _source_entrypoint(function) if inspect.isfunction(function) else None
    if source is not None:
        return Entrypoint("source", source)
    return Entrypoint("cloudpickle", _PICKLE_LOADER, {PICKLE_FILE: pickle_by_value(function)})


def _import_entrypoint(path: str) -> Entrypoint:
    parts = path.split(".")
    module, index = None, 0
    for index in range(len(parts) - 1, 0, -1):
        try:
            module = importlib.import_module(".".join(parts[:index]))
            break
        except ImportError:
            continue
    if module is None:
        raise BundleError(f"Cannot resolve function {path!r}: no importable module prefix")
    target: Any = module
    for part in parts[index:]:
        if not hasattr(target, part):
            raise BundleError(f"Cannot resolve function {path!r}: {target!r} has no {part!r}")
        target = getattr(target, part)
    if not callable(target):
        raise BundleError(f"Compute main function must be callable: {path!r}")
    name, attribute = ".".join(parts[:index]), parts[index]
    main = ".".join(parts[index:])
    return Entrypoint("import", f"from {name} import {attribute}\n\n\nmain = {main}\n")


def _source_entrypoint(function: types.FunctionType) -> str | None:
    """Return a standalone entrypoint for ``function``, or None if source cannot express it."""
    if (
        function.__name__ == "<lambda>"
        or function.__closure__
        or function.__qualname__ != function.__name__
        or hasattr(function, "__wrapped__")
        or not _simple_defaults(function)
    ):
        return None
    imports = _import_lines(function)
    if imports is None:
        return None
    try:
        source = textwrap.dedent(inspect.getsource(function)).strip()
    except (OSError, TypeError):
        return None
    if not source.startswith(("def ", "async def ")):
        return None
    header = []
    if function.__annotations__ and function.__code__.co_flags & _FUTURE_ANNOTATIONS:
        header.append("from __future__ import annotations")
    header.extend(imports)
    text = "\n".join(header) + "\n\n\n" if header else ""
    text += f"{source}\n\n\nmain = {function.__name__}\n"
    return text if _defines_main(text) else None


def _simple_defaults(function: types.FunctionType) -> bool:
    values = list(function.__defaults__ or ()) + list((function.__kwdefaults__ or {}).values())
    return all(isinstance(value, _SIMPLE_DEFAULTS) for value in values)


def _global_names(code: types.CodeType) -> tuple[set[str], bool]:
    """The global names ``code`` reads, and whether it writes any global."""
    names: set[str] = set()
    writes = False
    for instruction in dis.get_instructions(code):
        if instruction.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
            names.add(str(instruction.argval))
        elif instruction.opname in ("STORE_GLOBAL", "DELETE_GLOBAL"):
            writes = True
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            inner, inner_writes = _global_names(constant)
            names |= inner
            writes = writes or inner_writes
    return names, writes


def _import_lines(function: types.FunctionType) -> list[str] | None:
    """Import statements for the globals ``function`` uses; None if one is not importable."""
    namespace = function.__globals__
    names, writes = _global_names(function.__code__)
    if writes:
        return None
    lines = []
    for name in sorted(names):
        if name not in namespace:
            if hasattr(builtins, name) or name == function.__name__:
                continue
            return None
        value = namespace[name]
        if value is function:
            continue
        line = _import_line(name, value)
        if line is None:
            return None
        lines.append(line)
    return lines


def _import_line(name: str, value: Any) -> str | None:
    if isinstance(value, types.ModuleType):
        if value.__name__ == "__main__":
            return None
        return f"import {name}" if value.__name__ == name else f"import {value.__name__} as {name}"
    module_name = getattr(value, "__module__", None)
    qualname = getattr(value, "__qualname__", None)
    if not module_name or module_name == "__main__" or not qualname or "." in qualname:
        return None
    module = sys.modules.get(module_name)
    if module is None or getattr(module, qualname, None) is not value:
        return None
    alias = "" if qualname == name else f" as {name}"
    return f"from {module_name} import {qualname}{alias}"


def _defines_main(text: str) -> bool:
    namespace: dict[str, Any] = {"__name__": "__dlentrypoint__"}
    try:
        exec(compile(text, ENTRYPOINT, "exec"), namespace)
    except Exception:
        return False
    return callable(namespace.get("main"))


def pickle_by_value(function: Callable[..., Any]) -> bytes:
    """Pickle ``function`` with the code of its (user) module embedded, not referenced."""
    module = sys.modules.get(getattr(function, "__module__", None) or "")
    register = (
        module is not None
        and _is_user_module(module)
        and module.__name__ not in cloudpickle.list_registry_pickle_by_value()
    )
    if register:
        cloudpickle.register_pickle_by_value(module)
    try:
        pickled: bytes = cloudpickle.dumps(function)
        return pickled
    except Exception as exc:
        raise BundleError(f"Cannot pickle function {function!r}: {exc}") from exc
    finally:
        if register:
            cloudpickle.unregister_pickle_by_value(module)


def _is_user_module(module: types.ModuleType) -> bool:
    """Whether a module is the user's own code rather than installed or standard library."""
    path = getattr(module, "__file__", None)
    if module.__name__ == "__main__" or not path:
        return False
    paths = sysconfig.get_paths()
    installed = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    return not any(path.startswith(prefix) for prefix in installed) and (
        "site-packages" not in path and "dist-packages" not in path
    )
