"""lighttpd mod_fastcgi spawning `wsgigate run` itself with "bin-path" (the socket on fd 0).

deploy/lighttpd/fastcgi-spawn.conf. Started as root, lighttpd runs the backend as www-data: the
app, a copy of wsgigate and the interpreter must be readable by that user (servers.python_for,
servers.public_dir), as for mod_fcgid.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration import servers
from tests.support import DEPLOY, ROOT

pytestmark = pytest.mark.integration

HERE = ROOT / "tests" / "integration"


@pytest.fixture(scope="module")
def lighttpd() -> Iterator[Any]:
    user = servers.server_user()
    python = servers.python_for(user)
    root = servers.public_dir("wsgigate-lighttpd-spawn-")
    lib = root / "lib"
    shutil.copytree(
        ROOT / "src" / "wsgigate", lib / "wsgigate", ignore=shutil.ignore_patterns("*.pyc")
    )
    shutil.copy(HERE / "cgi_probe.py", lib)
    backend = root / "backend.sh"
    backend.write_text(
        f"#!/bin/sh\nPYTHONPATH={lib} exec {python} -m wsgigate run {lib}/cgi_probe.py:app\n"
    )
    backend.chmod(0o755)
    (root / "sock").mkdir()
    servers.precompile(lib)
    servers.make_public(root)
    if user is not None and os.geteuid() == 0:
        import pwd

        entry = pwd.getpwnam(user)
        os.chown(root / "sock", entry.pw_uid, entry.pw_gid)  # lighttpd creates the socket there
    env = {"WSGIGATE_SOCKET": str(root / "sock" / "app.sock"), "WSGIGATE_BIN": str(backend)}
    try:
        with servers.lighttpd(DEPLOY / "lighttpd" / "fastcgi-spawn.conf", env=env) as web:
            yield web
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_bin_path_spawns_wsgigate_run(lighttpd: Any) -> None:
    response = lighttpd.request("GET", "/caf%C3%A9/x?a=1&a=", headers={"X-Custom": "v"})
    assert response.status == 200, (response, lighttpd.log_tail())
    env = json.loads(response.body)["environ"]
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("", "/caf\xc3\xa9/x")
    assert env["QUERY_STRING"] == "a=1&a=" and env["HTTP_X_CUSTOM"] == "v"
    assert env["FCGI_ROLE"] == "RESPONDER"
    body = os.urandom(1 << 20)
    seen = json.loads(lighttpd.request("POST", "/up", body=body).body)
    assert seen["body"]["sha256"] == hashlib.sha256(body).hexdigest()
