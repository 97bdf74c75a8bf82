# One image for every listenwell process; the command picks the process:
#   docker run listenwell:latest worker | notifier --routes ... | api | connect --config ...
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    LISTENWELL_METRICS_HOST=0.0.0.0 \
    LISTENWELL_API_HOST=0.0.0.0 \
    LISTENWELL_DATA_DIR=/var/lib/listenwell

WORKDIR /app
COPY pyproject.toml README.md ./
COPY streams ./streams
COPY connectors ./connectors
COPY services ./services
RUN pip install . && useradd --system --uid 10001 --home-dir /var/lib/listenwell listenwell \
    && mkdir -p /var/lib/listenwell && chown listenwell /var/lib/listenwell
COPY alert_rules ./alert_rules

USER 10001
EXPOSE 8080 9101 9102 9103
ENTRYPOINT ["listenwell"]
CMD ["--help"]
