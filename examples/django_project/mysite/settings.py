"""Settings of the example Django project: no database, no templates, three views.

Run it through every gateway from examples/django_project (the project's folder must be on
sys.path, as `manage.py` and `wsgigate ... mysite.wsgi:application` run from there have it)::

    cd examples/django_project
    wsgigate check mysite.wsgi:application
    wsgigate fastcgi mysite.wsgi:application --bind 127.0.0.1:9000
"""

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-a-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS = ["*"]  # the example answers any Host; list your own names in a real project
ROOT_URLCONF = "mysite.urls"
WSGI_APPLICATION = "mysite.wsgi.application"
INSTALLED_APPS: list[str] = []
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
APPEND_SLASH = False
