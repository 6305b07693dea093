"""The example apps for examples/test_apps.py, which shows wsgigate's pytest plugin at work.

The plugin (``wsgigate.testing``, loaded by pytest because wsgigate is installed) asks for the
app under test through a ``wsgi_app`` fixture. Here it is parametrized over the three examples,
so every test in test_apps.py runs for each app through every gateway.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE / "django_project")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")


@pytest.fixture(params=["hello", "flask", "django"], scope="session")
def wsgi_app(request: pytest.FixtureRequest) -> object:
    if request.param == "hello":
        from hello import app
    elif request.param == "flask":
        from flask_app import app
    else:
        from mysite.wsgi import application as app
    return app
