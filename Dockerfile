# Annotator image: one image for web and worker (the command differs).
FROM node:20-bookworm-slim AS frontend
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 ANNOTATOR_DATA_DIR=/data PIP_NO_CACHE_DIR=1
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 curl && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.txt ./
RUN python -m venv /app/.venv && /app/.venv/bin/pip install --upgrade pip wheel setuptools && SAM2_BUILD_CUDA=0 /app/.venv/bin/pip install --no-build-isolation -r requirements.txt
COPY . .
COPY --from=frontend /src/frontend/dist /app/frontend/dist
RUN useradd --create-home annotator && mkdir -p /data && chown annotator /data
USER annotator
ENV PATH=/app/.venv/bin:$PATH
EXPOSE 8000
CMD ["gunicorn", "annotator.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "4", "--threads", "4", "--timeout", "120", "--access-logfile", "-"]
