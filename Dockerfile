FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY . .
RUN pip install --no-cache-dir . \
    && useradd --system bulwark && mkdir -p var && chown bulwark var
USER bulwark
EXPOSE 8000
CMD ["python", "manage.py", "serve", "--port", "8000"]
