from django.urls import path

from mysite import views

urlpatterns = [
    path("", views.home, name="home"),
    path("echo", views.echo, name="echo"),
    path("cookies", views.cookies, name="cookies"),
    path("hello/<str:name>", views.hello, name="hello"),
    path("whoami", views.whoami, name="whoami"),
]
