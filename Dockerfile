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
FROM ${BASE}

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
# Then what nothing imports at run time goes: torch's C++ headers and test binaries, the
# bundled test suites of the big libraries (about 300 MB).
RUN PIP_NO_CACHE_DIR=1 PIP_CERT=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt} \
    bash scripts/install.sh /app/.venv celery \
    && SITE=/app/.venv/lib/python3.11/site-packages \
    && rm -rf "$SITE/torch/include" "$SITE/torch/test" \
    && find "$SITE/torch/bin" -type f ! -name torch_shm_manager -delete \
    && for lib in pandas numpy scipy matplotlib pyarrow sympy; do \
         find "$SITE/$lib" -type d -name tests -prune -exec rm -rf {} +; done

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
