"""WSGI entry point (gunicorn editplatform.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "editplatform.settings")
application = get_wsgi_application()
