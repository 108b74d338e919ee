# The portal image: the Django portal (python -m portal.server), its Celery worker and beat, and the migration
# Job of deploy/ all run it. Build: docker build -t policygrid-portal .
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    POLICYGRID_STATE_DIR=/var/lib/policygrid DJANGO_STATIC_ROOT=/var/lib/policygrid/staticfiles
WORKDIR /app
COPY sdk/ /app/sdk/
RUN pip install --no-cache-dir './sdk[executor,s3,redis]'
# The rest of the project (.dockerignore leaves out state, tests, benches and virtualenvs).
COPY . /app/
RUN pip install --no-cache-dir . \
    && useradd --uid 10001 --home-dir /var/lib/policygrid --create-home policygrid
USER 10001
EXPOSE 8000
CMD ["python", "-m", "portal.server", "--bind", "0.0.0.0:8000", "--workers", "2", "--threads", "8"]
