FROM python:3.12-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY api api
COPY graph graph
COPY analytics analytics
COPY loaders loaders
RUN pip install --no-cache-dir .
USER nobody
EXPOSE 8000
CMD ["crm-graph", "serve"]
