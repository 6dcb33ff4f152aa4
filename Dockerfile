# One image for the three roles: `api`, `worker`, `scheduler` (the command picks one).
# Untested here: this machine has no Docker engine (see README).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY domain ./domain
COPY adapters ./adapters
COPY projections ./projections
COPY api ./api
COPY workers ./workers
COPY db ./db
RUN pip install . && useradd --create-home --uid 10001 engine
USER engine

ENV HOST=0.0.0.0 PORT=3000 LOG_FORMAT=json
EXPOSE 3000
CMD ["orderengine", "api"]
