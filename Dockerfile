# Letsema district node (web or Celery worker). One image for every district: the district is chosen
# at run time by LETSEMA_DISTRICT and the mounted/overridden config; secrets come from /run/secrets.
FROM python:3.11-slim-bookworm

# LETSEMA_SECRETS_DIR is a directory path (Docker secrets), not a secret value.
# hadolint ignore=DL3064
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LETSEMA_SECRETS_DIR=/run/secrets \
    LETSEMA_STATIC_ROOT=/app/staticfiles \
    DJANGO_SETTINGS_MODULE=config.settings

# PDF reports and statements (WeasyPrint) need Pango and a font
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt \
 && groupadd --system --gid 10001 letsema && useradd --system --uid 10001 --gid letsema --home-dir /app --shell /usr/sbin/nologin letsema

COPY --chown=10001:10001 . .
RUN chmod 0755 docker/entrypoint.sh

USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["docker/entrypoint.sh"]
CMD ["web"]
