# One Dockerfile for the web, the CPU worker and (with TF_PACKAGE) the GPU worker; REQUIREMENTS picks the role's set.
#   docker build -t vn-landmarks .                                             # CPU worker (LiteRT); runs the web too
#   docker build --build-arg REQUIREMENTS=requirements/web.txt -t vn-landmarks:web .   # web only: no ML runtimes
#   docker build --build-arg TF_PACKAGE="tensorflow[and-cuda]==2.21.0" -t vn-landmarks:gpu .
#   docker build --build-arg TF_PACKAGE="jax[cuda13]==0.10.2" -t vn-landmarks:gpu-jax .  # INFERENCE_RUNTIME=jax
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY requirements/ requirements/
ARG REQUIREMENTS=requirements/worker.txt
RUN pip install -r "$REQUIREMENTS"
ARG TF_PACKAGE=""
RUN if [ -n "$TF_PACKAGE" ]; then pip uninstall -y tensorflow-cpu tensorflow_cpu || true; pip install "$TF_PACKAGE"; fi

COPY . .
RUN pybabel compile -d webapp/translations \
 && useradd --create-home --uid 1000 app && mkdir -p /data/uploads /data/references /data/models && chown -R app /data
USER app

ENV UPLOAD_DIR=/data/uploads INSTANCE_DIR=/data/instance
EXPOSE 8000
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--workers", "4", "--threads", "4", "--access-logfile", "-", "wsgi:app"]
