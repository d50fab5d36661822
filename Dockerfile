FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends curl procps && rm -rf /var/lib/apt/lists/*
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN DJANGO_ALLOW_INSECURE_KEY=1 python manage.py collectstatic --noinput -v 0
RUN useradd --create-home troubadour && mkdir -p /app/var/metrics && chown -R troubadour /app/var
USER troubadour
EXPOSE 8000
ENV PORT=8000 WEB_CONCURRENCY=2
CMD ["gunicorn", "-c", "config/gunicorn.conf.py", "config.asgi:application"]
