"""MODULE:APP loading (wsgigate.loader): every form, and one clear line for every mistake."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from wsgigate.errors import AppLoadError, ConfigurationError
from wsgigate.loader import load_app

APP_SOURCE = """
def app(environ, start_response):
    start_response("200 OK", [])
    return [b"app"]

def application(environ, start_response):
    start_response("200 OK", [])
    return [b"application"]

class Holder:
    class inner:
        @staticmethod
        def wsgi(environ, start_response):
            start_response("200 OK", [])
            return [b"dotted"]

def create_app(name="default", *, debug=False, extra=None):
    def made(environ, start_response):
        start_response("200 OK", [])
        return [repr((name, debug, extra)).encode()]
    return made

not_callable = 42

def returns_none():
    return None
"""

Write = Callable[..., Path]


@pytest.fixture
def write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Write]:
    """Write a module under tmp_path (on sys.path); undo sys.path and sys.modules after."""
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    monkeypatch.chdir(tmp_path)
    before = set(sys.modules)

    def write_module(relative: str, source: str = APP_SOURCE) -> Path:
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
        return path

    yield write_module
    for name in set(sys.modules) - before:
        del sys.modules[name]


def body(spec: str) -> bytes:
    app = load_app(spec)
    result = app({}, lambda status, headers, exc_info=None: None)
    return b"".join(result)


def one_line_error(spec: str) -> str:
    with pytest.raises(AppLoadError) as info:
        load_app(spec)
    message = str(info.value)
    assert "\n" not in message, message
    assert isinstance(info.value, ConfigurationError)
    return message


# -- the accepted forms ----------------------------------------------------------------------


def test_module_colon_attribute(write: Write) -> None:
    write("ld_plain.py")
    assert body("ld_plain:app") == b"app"
    assert body("ld_plain:application") == b"application"


def test_dotted_attribute(write: Write) -> None:
    write("ld_dotted.py")
    assert body("ld_dotted:Holder.inner.wsgi") == b"dotted"


def test_package_module(write: Write) -> None:
    write("ld_pkg/__init__.py", "")
    write("ld_pkg/sub/__init__.py", "")
    write("ld_pkg/sub/web.py")
    assert body("ld_pkg.sub.web:app") == b"app"


def test_default_attribute_application_before_app(write: Write) -> None:
    write("ld_both.py")
    assert body("ld_both") == b"application"
    write("ld_only_app.py", "def app(e, s):\n    s('200 OK', [])\n    return [b'only app']\n")
    assert body("ld_only_app") == b"only app"


def test_default_attribute_missing(write: Write) -> None:
    write("ld_neither.py", "x = 1\n")
    message = one_line_error("ld_neither")
    assert "'application'" in message and "'app'" in message


def test_factory_without_arguments(write: Write) -> None:
    write("ld_fac.py")
    assert body("ld_fac:create_app()") == b"('default', False, None)"


def test_factory_with_literal_arguments(write: Write) -> None:
    write("ld_fac2.py")
    assert (
        body("ld_fac2:create_app('prod', debug=True, extra={'a': [1, 2.5, None], 'b': (b'x',)})")
        == b"('prod', True, {'a': [1, 2.5, None], 'b': (b'x',)})"
    )


def test_factory_with_negative_and_dotted_name(write: Write) -> None:
    write(
        "ld_fac3.py",
        """
        class Factories:
            @staticmethod
            def make(n):
                def app(environ, start_response):
                    start_response("200 OK", [])
                    return [str(n).encode()]
                return app
        """,
    )
    assert body("ld_fac3:Factories.make(-3)") == b"-3"


def test_file_path_spec(write: Write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write("sub/dir/ld_file_app.py")
    monkeypatch.chdir("/")
    assert body(f"{path}:app") == b"app"
    assert body(f"{path}") == b"application"
    monkeypatch.chdir(tmp_path)
    assert body("sub/dir/ld_file_app.py:application") == b"application"


def test_file_path_imports_its_siblings(write: Write, monkeypatch: pytest.MonkeyPatch) -> None:
    write("site/ld_helper.py", "GREETING = b'from sibling'\n")
    path = write(
        "site/ld_main.py",
        """
        from ld_helper import GREETING
        def app(environ, start_response):
            start_response("200 OK", [])
            return [GREETING]
        """,
    )
    monkeypatch.chdir("/")
    assert body(f"{path}:app") == b"from sibling"


def test_file_path_loads_that_file_not_a_same_named_module(write: Write, tmp_path: Path) -> None:
    # a module of the same name earlier on sys.path (here: the current directory) must not
    # shadow the file the user named
    write("ld_twin.py", "def app(e, s):\n    s('200 OK', [])\n    return [b'wrong twin']\n")
    path = write(
        "deploy/ld_twin.py", "def app(e, s):\n    s('200 OK', [])\n    return [b'right']\n"
    )
    sys.path.append(str(path.parent))  # the file's folder is on sys.path, but after the twin's
    assert body(f"{path}:app") == b"right"


def test_example_app_by_path() -> None:
    from tests.support import EXAMPLES

    app = load_app(f"{EXAMPLES / 'hello.py'}:app")
    assert callable(app)


# -- never eval ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "create_app(__import__('os').system('touch PWNED'))",
        "create_app(name=__import__('os').system('touch PWNED'))",
        "create_app(open('PWNED', 'w'))",
        "create_app(*['a'])",
        "create_app(**{'name': 'x'})",
        "create_app(x for x in [1])",
        "create_app(lambda: 1)",
        "create_app([i for i in (1,)])",
        "create_app(1 + 1j if True else 0)",
        "__import__('os').system('touch PWNED')",
        "(lambda: app)()",
        "create_app()()",
        "Holder.__dict__['inner']()",
    ],
)
def test_non_literal_factory_arguments_are_refused(
    write: Write, tmp_path: Path, target: str
) -> None:
    write("ld_evil.py")
    message = one_line_error(f"ld_evil:{target}")
    assert "ld_evil" in message
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("target", ["create_app({[1]: 2})", "create_app({{}})", "create_app("])
def test_malformed_factory_call_is_one_line(write: Write, target: str) -> None:
    write("ld_bad_call.py")
    one_line_error(f"ld_bad_call:{target}")


def test_deeply_nested_factory_argument_is_one_line(write: Write) -> None:
    write("ld_deep.py")
    one_line_error("ld_deep:create_app(" + "[" * 5000 + "]" * 5000 + ")")


# -- what was not found, and where -----------------------------------------------------------


def test_module_missing(write: Write, tmp_path: Path) -> None:
    message = one_line_error("ld_no_such_module:app")
    assert "module 'ld_no_such_module' not found" in message
    assert str(tmp_path) in message  # where it looked


def test_submodule_of_missing_package(write: Write) -> None:
    assert "not found" in one_line_error("ld_no_pkg.sub:app")


def test_missing_submodule_of_existing_package(write: Write) -> None:
    write("ld_pkg2/__init__.py", "")
    message = one_line_error("ld_pkg2.nope:app")
    assert "module 'ld_pkg2.nope' not found" in message


def test_module_importing_something_missing(write: Write) -> None:
    write("ld_broken_dep.py", "import ld_dependency_that_is_not_installed\napp = None\n")
    message = one_line_error("ld_broken_dep:app")
    assert "'ld_broken_dep' was found" in message
    assert "'ld_dependency_that_is_not_installed'" in message
    assert "not found" not in message  # the two cases read differently


def test_module_importing_a_missing_name(write: Write) -> None:
    write("ld_bad_name.py", "from os import no_such_function_here\napp = None\n")
    message = one_line_error("ld_bad_name:app")
    assert "'ld_bad_name' was found" in message
    assert "no_such_function_here" in message


def test_attribute_missing(write: Write) -> None:
    write("ld_attr.py")
    message = one_line_error("ld_attr:nope")
    assert "'ld_attr' has no attribute 'nope'" in message


def test_dotted_attribute_missing_names_the_step(write: Write) -> None:
    write("ld_attr2.py")
    message = one_line_error("ld_attr2:Holder.missing.wsgi")
    assert "'ld_attr2.Holder' has no attribute 'missing'" in message


def test_attribute_not_callable(write: Write) -> None:
    write("ld_nc.py")
    assert "int, not a WSGI callable" in one_line_error("ld_nc:not_callable")
    assert "not callable" in one_line_error("ld_nc:not_callable()")


def test_factory_returning_non_callable(write: Write) -> None:
    write("ld_none.py")
    assert "not a WSGI callable" in one_line_error("ld_none:returns_none()")


def test_file_missing(write: Write, tmp_path: Path) -> None:
    message = one_line_error("nowhere/app.py:app")
    assert str(tmp_path / "nowhere" / "app.py") in message


def test_file_name_not_a_module_name(write: Write) -> None:
    write("my-app.py")
    assert "not importable" in one_line_error("my-app.py:app")


@pytest.mark.parametrize(
    "spec",
    [":app", "ld_x:1app", "ld_x:a b", "ld_x:app.", "bad-name:app", "ld_x:app;rm", "a..b:app"],
)
def test_malformed_specs(write: Write, spec: str) -> None:
    write("ld_x.py")
    one_line_error(spec)


def test_spec_with_newline_stays_one_line(write: Write) -> None:
    one_line_error("ld_no\nsuch:app")


@pytest.mark.parametrize("name", ["json", "sys"])
def test_file_named_like_an_imported_module(write: Write, name: str) -> None:
    path = write(f"shadow/{name}.py")
    message = one_line_error(f"{path}:app")
    assert f"different module named {name!r}" in message and "rename" in message
    assert sys.modules[name].__name__ == name  # the real one is untouched
