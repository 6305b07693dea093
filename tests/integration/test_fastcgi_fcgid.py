"""Apache mod_fcgid starts `wsgigate run` with the socket on fd 0 (deploy/apache/fcgid.conf).

Started as root, Apache runs the FastCGI processes as www-data: the app, a copy of wsgigate and
the interpreter must be readable by that user (servers.python_for, servers.public_dir).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration import servers
from tests.support import DEPLOY, ROOT

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def apache() -> Iterator[Any]:
    user = servers.server_user()
    python = servers.python_for(user)
    root = servers.public_dir("wsgigate-fcgid-site-")
    lib, www = root / "lib", root / "www"
    shutil.copytree(
        ROOT / "src" / "wsgigate", lib / "wsgigate", ignore=shutil.ignore_patterns("*.pyc")
    )
    shutil.copy(HERE / "cgi_probe.py", lib)
    www.mkdir()
    wrapper = www / "app.fcgi"
    wrapper.write_text(
        f"#!/bin/sh\nPYTHONPATH={lib} exec {python} -m wsgigate run {lib}/cgi_probe.py:app\n"
    )
    wrapper.chmod(0o755)
    servers.precompile(lib)
    servers.make_public(root)
    try:
        config = DEPLOY / "apache" / "fcgid.conf"
        with servers.apache(config, env={"WSGIGATE_DOCROOT": str(www)}) as web:
            yield web
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_fcgid_spawns_wsgigate_run(apache: Any) -> None:
    response = apache.request("GET", "/app/caf%C3%A9?a=1&a=", headers={"X-Custom": "v"})
    assert response.status == 200, (response, apache.log_tail())
    env = json.loads(response.body)["environ"]
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/app", "/caf\xc3\xa9")
    assert env["QUERY_STRING"] == "a=1&a=" and env["HTTP_X_CUSTOM"] == "v"
    assert env["FCGI_ROLE"] == "RESPONDER"
    body = os.urandom(1 << 20)
    upload = apache.request("POST", "/app/up", body=body)
    assert upload.status == 200, (upload, apache.log_tail())
    assert json.loads(upload.body)["body"]["sha256"] == hashlib.sha256(body).hexdigest()
    for i in range(5):
        seen = json.loads(apache.request("GET", f"/app/n{i}").body)["environ"]
        assert seen["PATH_INFO"] == f"/n{i}"
