# riskatlas service image: the app only; PostGIS runs in its own container (docker-compose.yml).
FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends gdal-bin postgresql-client \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gis gis
COPY layers layers
COPY etl etl
COPY services services
COPY maps maps
RUN pip install --no-cache-dir .
ENV RISKATLAS_STATE_DIR=/data
VOLUME /data
EXPOSE 8000
CMD ["sh", "-c", "riskatlas db init && riskatlas serve --host 0.0.0.0 --port 8000"]
