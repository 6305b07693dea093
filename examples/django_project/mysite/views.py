"""The same routes as examples/hello.py and examples/flask_app.py, as Django views."""

from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.urls import reverse


def home(request: HttpRequest) -> HttpResponse:
    return HttpResponse("Hello from Django!\n", content_type="text/plain; charset=utf-8")


def echo(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    return HttpResponse(request.body, content_type=request.content_type or "text/plain")


def cookies(request: HttpRequest) -> HttpResponse:
    response = HttpResponse("two cookies\n", content_type="text/plain")
    response.set_cookie("a", "1")
    response.set_cookie("b", "2", httponly=True)
    return response


def hello(request: HttpRequest, name: str) -> HttpResponse:
    return HttpResponse(f"Hello, {name}!\n", content_type="text/plain; charset=utf-8")


def whoami(request: HttpRequest) -> HttpResponse:
    return HttpResponse(request.build_absolute_uri(reverse("whoami")) + "\n")
