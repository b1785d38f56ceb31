# basket: TorchServe serving the published basket.mar; with another command, Airflow's
# components for the Celery deployment (compose.yaml: `bash /app/scripts/airflow_cluster.sh
# scheduler dag-processor triggerer`, `... api-server`, `... worker`).
#   docker build -t basket .
#   docker run --rm -p 8080:8080 -p 8082:8082 -v "$PWD/model_store:/app/model_store" basket
#   docker exec <container> cat /app/serve/key_file.json    # the inference key for clients
# Where no image registry or PyTorch index is reachable (scripts/container_build.sh does this):
#   --build-arg BASE=localhost/bookworm-py (scripts/container_base.sh) --build-arg TORCH_INDEX_URL=
#   --build-arg PIP_FIND_LINKS=/wheels with the folder holding torch's CPU wheel mounted there.
ARG BASE=python:3.11-slim-bookworm

# ---- Triton: `docker build --target triton -t basket-triton .` ---------------------------
# NVIDIA's tritonserver (the nvidia-pytriton wheel, CPU, Python backend) serving the same
# basket.mar from the same model store volume, exported as a Triton repository at start
# (scripts/triton_serve.sh). Its own environment: the wheel needs numpy<2.
FROM ${BASE} AS triton
# The backend stub links libpython: python:3.11-slim has it, Debian's python3 package does not.
RUN if [ ! -e /usr/local/lib/libpython3.11.so.1.0 ]; then \
      apt-get update && apt-get install -y --no-install-recommends libpython3.11=3.11.* \
      && rm -rf /var/lib/apt/lists/*; fi \
    && useradd --create-home --uid 1000 --user-group basket
WORKDIR /app
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG PIP_FIND_LINKS=""
ARG PIP_CERT=""
COPY scripts/triton_env.sh scripts/slim_venv.sh scripts/
RUN PIP_NO_CACHE_DIR=1 PIP_CERT=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt} \
    bash scripts/triton_env.sh /app/.venv-triton \
    && bash scripts/slim_venv.sh /app/.venv-triton
COPY model_src/ model_src/
COPY scripts/triton_serve.sh scripts/
# Triton's Python backend sets the execute bit of its stub when it loads a model: the stub's
# folder belongs to the server's user (the rest of the environment stays root's, read-only).
RUN mkdir -p model_store serve \
    && chown -R basket:basket model_store serve \
       /app/.venv-triton/lib/python3.11/site-packages/pytriton/tritonserver/backends/python
ENV BASKET_STORE_URL=sqlite:////app/model_store/histories.sqlite
USER 1000:1000
WORKDIR /app/serve
VOLUME ["/app/model_store"]
EXPOSE 8000 8002
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["/app/.venv-triton/bin/python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/v2/health/ready', timeout=4)"]
CMD ["bash", "/app/scripts/triton_serve.sh"]

# ---- TorchServe (the default target) ------------------------------------------------------
FROM ${BASE} AS torchserve

# Java 17 runs TorchServe's frontend; curl serves the HEALTHCHECK.
RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless=17.* curl=7.* \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 1000 --user-group basket
WORKDIR /app

# The Makefile's install steps, from the same script (torch's CPU build first, then basket).
COPY pyproject.toml README.md ./
COPY scripts/install.sh scripts/
COPY model_src/ model_src/
# torch's CPU build comes from PyTorch's CPU index, or from PIP_FIND_LINKS when that is empty.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG PIP_FIND_LINKS=""
# A CA bundle for pip behind a TLS-inspecting proxy (a mounted file), if any.
ARG PIP_CERT=""
# The celery extra: the same image runs Airflow's Celery deployment (README, compose file).
# Then what nothing imports at run time goes (scripts/slim_venv.sh).
COPY scripts/slim_venv.sh scripts/
RUN PIP_NO_CACHE_DIR=1 PIP_CERT=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt} \
    bash scripts/install.sh /app/.venv celery \
    && bash scripts/slim_venv.sh /app/.venv

COPY handlers/ handlers/
COPY dags/ dags/
COPY expectations/ expectations/
COPY config.properties ./
COPY scripts/container_config.sh scripts/container_healthcheck.sh scripts/airflow_cluster.sh scripts/
# Secure by default (scripts/container_config.sh): token authorization on, inference and
# metrics on every interface, the management API on the container's loopback and unable to
# register models, model URLs limited to the model store.
RUN bash scripts/container_config.sh config.properties > config.container.properties \
    && mkdir -p model_store serve airflow_home /data \
    && chown -R basket:basket model_store serve airflow_home /data

# Requests by customer id read the history store the nightly DAG loads into the volume
# (histories.sqlite); point BASKET_STORE_URL at Redis (redis://:PASSWORD@HOST:6379/0) to share
# one store between replicas. Credentials come from here, never from basket.mar.
ENV PATH=/app/.venv/bin:$PATH \
    TS_CONFIG_FILE=/app/config.container.properties \
    BASKET_STORE_URL=sqlite:////app/model_store/histories.sqlite
USER 1000:1000
# TorchServe writes key_file.json (the API keys) and logs/ in its working directory.
WORKDIR /app/serve
# The nightly DAG publishes basket.mar (and its versions) and the history store into this volume.
VOLUME ["/app/model_store"]
EXPOSE 8080 8082
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["bash", "/app/scripts/container_healthcheck.sh"]
CMD ["torchserve", "--start", "--foreground", "--ncs", "--models", "basket.mar"]
