# ReleaseHub image: web (gunicorn), worker and beat all run from it (see docker-compose.yml).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    RELEASEHUB_VAR_DIR=/app/var

RUN apt-get update \
    && apt-get install -y --no-install-recommends git openssh-client \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 releasehub

WORKDIR /app
COPY pyproject.toml requirements.lock README.md ./
# Dependencies first, so a code change does not reinstall them.
RUN mkdir -p releasehub apps && touch releasehub/__init__.py apps/__init__.py \
    && pip install -c requirements.lock . && pip uninstall -y releasehub
COPY . .
# collectstatic generates throw-away keys into var/; none may ship in the image.
RUN python manage.py collectstatic --noinput --verbosity 0 \
    && rm -f var/secret_key var/encryption_key \
    && chown -R releasehub:releasehub /app/var

USER releasehub
EXPOSE 8000
CMD ["gunicorn", "releasehub.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "4", "--access-logfile", "-"]
