#!/usr/bin/env python3
"""Run examples/hello.py's app as a CGI script (RFC 3875) with wsgigate.

Copy this file into the server's CGI directory (or next to the shared-hosting .htaccess in
deploy/apache/shared-hosting/), make it executable (chmod 755), and:
- make the #! line name the Python that has wsgigate installed (pip install wsgigate);
- set APP_DIR to the directory holding hello.py, preferably outside the document root.
See docs/cgi.md.
"""

import sys

APP_DIR = "/srv/wsgigate/examples"
sys.path.insert(0, APP_DIR)

from hello import app  # noqa: E402

from wsgigate.cgi import run  # noqa: E402

run(app)
