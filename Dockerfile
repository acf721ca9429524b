# One image for both processes: `python -m api` (default) or `python -m projector`.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY setup.cfg pyproject.toml README.md ./
COPY api ./api
COPY projector ./projector
COPY events ./events
COPY config ./config
RUN pip install . && useradd --system --uid 10001 app
USER app
EXPOSE 8000 9102
CMD ["python", "-m", "api"]
