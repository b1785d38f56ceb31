#!/usr/bin/env bash
# Builds the repo's Dockerfile with podman on a machine that reaches package registries but no
# image registry (the machines this project is built on): a local Debian 12 base
# (scripts/container_base.sh), torch's CPU wheel from the folder pip already finds it in
# (mounted into the build), and this machine's CA bundle for pip. Elsewhere, `docker build .`.
#   scripts/container_build.sh [TAG [TARGET]]   (default localhost/basket:latest, torchserve;
#                                               TARGET triton builds the Triton image)
set -euo pipefail
cd "$(dirname "$0")/.."
TAG=${1:-localhost/basket:latest}
TARGET=${2:-torchserve}
BASE=${BASE_IMAGE:-localhost/bookworm-py}
bash scripts/container_base.sh "$BASE"
WHEELS=${TORCH_WHEELS:-$(pip config get global.find-links 2>/dev/null || true)}
CA=${HOST_CA:-/etc/ssl/certs/ca-certificates.crt}
args=(--build-arg "BASE=$BASE")
if [ -n "$WHEELS" ] && ls "$WHEELS"/torch-2.13.0*.whl > /dev/null 2>&1; then
  args+=(--volume "$WHEELS:/wheels:ro" --build-arg PIP_FIND_LINKS=/wheels --build-arg TORCH_INDEX_URL=)
fi
[ -f "$CA" ] && args+=(--volume "$CA:/host-ca.crt:ro" --build-arg PIP_CERT=/host-ca.crt)
# runc: crun refuses cgroups in hybrid mode here; explicit ulimits: podman's defaults are refused;
# docker format: the OCI format drops HEALTHCHECK.
podman --runtime /usr/sbin/runc build --network=host --format docker \
  --ulimit nofile=20000:20000 --ulimit nproc=4096:4096 \
  "${args[@]}" --target "$TARGET" --tag "$TAG" .
