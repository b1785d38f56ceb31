# basket: TorchServe serving the published basket.mar.
#   docker build -t basket .
#   docker run --rm -p 127.0.0.1:8080-8082:8080-8082 -v "$PWD/model_store:/app/model_store" basket
FROM python:3.11-slim-bookworm

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
ENV TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu \
    PIP_NO_CACHE_DIR=1
RUN bash scripts/install.sh /app/.venv

COPY handlers/ handlers/
COPY dags/ dags/
COPY expectations/ expectations/
COPY config.properties ./
# Inside the container the APIs listen on every interface; publish the ports to the host's
# loopback (as above) unless token authorization is turned on (see README).
RUN sed 's#=http://127.0.0.1:#=http://0.0.0.0:#' config.properties > config.container.properties \
    && mkdir -p model_store logs \
    && chown -R basket:basket model_store logs

ENV PATH=/app/.venv/bin:$PATH \
    TS_CONFIG_FILE=/app/config.container.properties
USER 1000:1000
# The nightly DAG publishes basket.mar (and its versions) into this volume.
VOLUME ["/app/model_store"]
EXPOSE 8080 8081 8082
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["curl", "-fsS", "http://127.0.0.1:8080/ping"]
CMD ["torchserve", "--start", "--foreground", "--ncs", "--models", "basket.mar"]
