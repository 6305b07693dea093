"""Resolve ``MODULE:APP`` specs to a WSGI callable.

Accepted forms::

    myapp                    module; attribute ``application``, else ``app``
    myapp:wsgi_app           module attribute (dotted paths allowed: ``pkg.mod:obj.app``)
    myapp:create_app()       factory call; arguments must be Python literals
    myapp:create_app("prod", debug=False)
    path/to/file.py:app      a file; its folder goes first on sys.path

Every failure is an :class:`~wsgigate.errors.AppLoadError` whose message is one line that says
what was not found and where the loader looked. Factory arguments are parsed with ``ast`` and
never evaluated as code.
"""

from __future__ import annotations

import importlib
import os
import sys

from wsgigate.errors import AppLoadError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from wsgiref.types import WSGIApplication

DEFAULT_ATTRIBUTES = ("application", "app")


def _parse_target(target: str, spec: str) -> tuple[str, tuple[Any, ...], dict[str, Any], bool]:
    """Split ``name`` / ``name(args)`` into the dotted name, literal arguments and a call flag."""
    if "(" not in target:
        if not all(part.isidentifier() for part in target.split(".")):
            raise AppLoadError(f"{spec!r}: {target!r} is not an attribute name")
        return target, (), {}, False
    import ast

    try:
        tree = ast.parse(target, mode="eval").body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        raise AppLoadError(f"{spec!r}: cannot parse {target!r} as a factory call") from None
    if not isinstance(tree, ast.Call):
        raise AppLoadError(f"{spec!r}: {target!r} is not a name or a factory call")
    parts: list[str] = []
    func = tree.func
    while isinstance(func, ast.Attribute):
        parts.insert(0, func.attr)
        func = func.value
    if not isinstance(func, ast.Name):
        raise AppLoadError(f"{spec!r}: factory must be a plain (dotted) name")
    parts.insert(0, func.id)
    try:
        args = tuple(ast.literal_eval(arg) for arg in tree.args)
        kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in tree.keywords if kw.arg}
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        # TypeError: a literal that cannot be built, such as {[1]: 2}
        raise AppLoadError(
            f"{spec!r}: factory arguments must be literals (strings, numbers, lists, ...)"
        ) from None
    if any(kw.arg is None for kw in tree.keywords):
        raise AppLoadError(f"{spec!r}: **kwargs are not supported in a factory call")
    return ".".join(parts), args, kwargs, True


def _import(module_name: str, spec: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing == module_name or module_name.startswith(missing + "."):
            # the folders a user may have meant; the interpreter's own ones go unnamed
            prefixes = (sys.prefix, sys.base_prefix)
            own = [p or os.getcwd() for p in sys.path if not p or not p.startswith(prefixes)]
            where = "".join(f"{p!r}, " for p in dict.fromkeys(own[:4]))
            raise AppLoadError(
                f"{spec!r}: module {module_name!r} not found "
                f"(looked in {where}and the installed packages)"
            ) from None
        raise AppLoadError(
            f"{spec!r}: module {module_name!r} was found, but importing it failed: "
            f"no module named {missing!r}"
        ) from None
    except ImportError as exc:  # "cannot import name X from Y": also something missing
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise AppLoadError(
            f"{spec!r}: module {module_name!r} was found, but importing it failed: {reason}"
        ) from None


def _import_file(path: str, spec: str) -> Any:
    if not os.path.isfile(path):
        raise AppLoadError(f"{spec!r}: file {os.path.abspath(path)!r} not found")
    folder, filename = os.path.split(os.path.abspath(path))
    module_name = filename[:-3]
    if not module_name.isidentifier():
        raise AppLoadError(f"{spec!r}: {filename!r} is not importable as a module name")
    if not sys.path or sys.path[0] != folder:
        # first, as `python file.py` does: a same-named module elsewhere must not win
        sys.path.insert(0, folder)
    wanted = os.path.join(folder, filename)
    existing = sys.modules.get(module_name)
    if existing is not None and _file_of(existing) != wanted:
        raise AppLoadError(
            f"{spec!r}: a different module named {module_name!r} is already imported "
            f"({_file_of(existing) or 'built in'}); rename the file"
        )
    module = _import(module_name, spec)
    if _file_of(module) != wanted:
        raise AppLoadError(
            f"{spec!r}: importing {module_name!r} gave {_file_of(module) or 'a built-in module'}"
            ", not this file; rename the file"
        )
    return module


def _file_of(module: Any) -> str:
    path = getattr(module, "__file__", None)
    return os.path.abspath(path) if path else ""


def load_app(spec: str) -> WSGIApplication:
    """Import and return the WSGI application named by ``spec`` (see the module docstring)."""
    module_part, sep, target = spec.partition(":")
    if not module_part:
        raise AppLoadError(f"{spec!r}: expected MODULE:APP, e.g. 'myapp:app'")
    if module_part.endswith(".py") or os.sep in module_part:
        module = _import_file(module_part, spec)
    else:
        if not all(part.isidentifier() for part in module_part.split(".")):
            raise AppLoadError(f"{spec!r}: {module_part!r} is not a module name or a .py file")
        if "" not in sys.path and os.getcwd() not in sys.path:
            sys.path.insert(0, "")  # as `python -m` does: the app lives where you are
        module = _import(module_part, spec)

    if sep and target:
        name, args, kwargs, call = _parse_target(target, spec)
    else:
        for candidate in DEFAULT_ATTRIBUTES:
            if hasattr(module, candidate):
                name, args, kwargs, call = candidate, (), {}, False
                break
        else:
            raise AppLoadError(
                f"{spec!r}: module {module.__name__!r} has neither 'application' nor 'app'; "
                f"name it: {module_part}:NAME"
            )

    obj: Any = module
    walked = module.__name__
    for attr in name.split("."):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            raise AppLoadError(f"{spec!r}: {walked!r} has no attribute {attr!r}") from None
        walked += "." + attr
    if call:
        if not callable(obj):
            raise AppLoadError(f"{spec!r}: {walked!r} is not callable")
        obj = obj(*args, **kwargs)
    if not callable(obj):
        raise AppLoadError(f"{spec!r}: {walked!r} is {type(obj).__name__}, not a WSGI callable")
    app: WSGIApplication = obj
    return app
