#!/bin/sh
# Container entrypoint: web (migrate, collect static, gunicorn) | worker (Celery) | ring-migrate | manage ...
set -eu
case "${1:-web}" in
  web)
    python manage.py migrate --noinput
    python manage.py collectstatic --noinput --verbosity 0
    exec gunicorn config.wsgi:application --bind 0.0.0.0:8000 --workers "${WEB_WORKERS:-2}" --threads 4 \
      --timeout 60 --keep-alive 75 --access-logfile - ;;
  worker)
    exec celery -A config worker --loglevel INFO --concurrency "${WORKER_CONCURRENCY:-1}" ;;
  ring-migrate)
    exec python manage.py ring_migrate ;;
  manage)
    shift; exec python manage.py "$@" ;;
  *)
    exec "$@" ;;
esac
