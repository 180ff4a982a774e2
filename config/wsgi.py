import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# Import every view module now (the URLconf and what it includes), not during the first request: under load that
# import takes longer than a peer's federation deadline (0.3 s), so a node just started or reloaded would answer
# its first signed requests late and be backed off by its peers as if it were down.
from django.urls import get_resolver  # noqa: E402

get_resolver().url_patterns  # noqa: B018 - the attribute access is the import
