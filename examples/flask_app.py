"""A Flask app, unchanged, on every gateway wsgigate has.

    wsgigate check examples/flask_app.py:app
    wsgigate run examples/flask_app.py:app                     # development server
    wsgigate fastcgi examples/flask_app.py:app --bind 127.0.0.1:9000
    wsgigate asgi examples/flask_app.py:app --server uvicorn

Routes: ``/`` greets, ``/echo`` (POST) sends the body back, ``/cookies`` sets two cookies,
``/hello/<name>`` greets by name (unicode paths), ``/whoami`` shows the URL Flask builds for
itself (SCRIPT_NAME and the host at work).
"""

from __future__ import annotations

from flask import Flask, Response, request, url_for

app = Flask(__name__)


@app.get("/")
def home() -> Response:
    return Response("Hello from Flask!\n", content_type="text/plain; charset=utf-8")


@app.post("/echo")
def echo() -> Response:
    return Response(request.get_data(), content_type=request.content_type or "text/plain")


@app.get("/cookies")
def cookies() -> Response:
    response = Response("two cookies\n", content_type="text/plain")
    response.set_cookie("a", "1")
    response.set_cookie("b", "2", httponly=True)
    return response


@app.get("/hello/<name>")
def hello(name: str) -> Response:
    return Response(f"Hello, {name}!\n", content_type="text/plain; charset=utf-8")


@app.get("/whoami")
def whoami() -> Response:
    return Response(url_for("whoami", _external=True) + "\n", content_type="text/plain")
