"""The project's WSGI application, as `django-admin startproject` writes it.

From examples/django_project: `wsgigate check mysite.wsgi:application`.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

application = get_wsgi_application()
