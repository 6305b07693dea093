"""Your app through every gateway, in your own test suite, with wsgigate's pytest plugin.

    pytest examples/test_apps.py

``gateway_client`` runs each test once per gateway (direct, cgi, http, fastcgi, scgi, asgi and
every Lambda event source); ``fastcgi_client``, ``asgi_client``, ``lambda_client``... pick one.
The app comes from the ``wsgi_app`` fixture in conftest.py.
"""

from __future__ import annotations

from wsgigate.testing import Client, Response, lambda_event


def test_home(gateway_client: Client) -> None:
    response = gateway_client.get("/")
    assert response.status == 200
    assert response.text.startswith("Hello")
    assert response.header("Content-Type", "").startswith("text/plain")


def test_echo_post_body(gateway_client: Client) -> None:
    body = "caf\u00e9 \u2603".encode() * 1000
    response = gateway_client.post("/echo", body=body, headers={"Content-Type": "text/plain"})
    assert response.status == 200
    assert response.body == body


def test_both_cookies_reach_the_client(gateway_client: Client) -> None:
    response = gateway_client.get("/cookies")
    cookies = sorted(value.split(";")[0].strip() for value in response.header_list("Set-Cookie"))
    assert cookies == ["a=1", "b=2"]


def test_unicode_path(gateway_client: Client) -> None:
    response = gateway_client.get("/hello/caf%C3%A9")
    assert response.status == 200
    assert "caf\u00e9" in response.text


def test_one_gateway(fastcgi_client: Client, asgi_client: Client) -> None:
    for client in (fastcgi_client, asgi_client):
        assert client.head("/").status == 200
        assert client.get("/", headers={"Accept": "text/plain"}).status == 200


def test_lambda_event_for_your_own_handler(wsgi_app: object) -> None:
    from wsgigate.aws_lambda import make_handler

    handler = make_handler(wsgi_app)  # type: ignore[arg-type]
    answer = handler(lambda_event("alb", method="GET", path="/"), None)
    assert answer["statusCode"] == 200
    assert isinstance(Response("200 OK", [], b""), Response)
