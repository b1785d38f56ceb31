#!/usr/bin/env bash
# A local Debian 12 base image with Python 3.11, for machines that reach Debian's mirror but no
# image registry (podman cannot pull python:3.11-slim-bookworm there). Idempotent: does
# nothing when the image exists.
#   scripts/container_base.sh [IMAGE]   (default localhost/bookworm-py; about a minute, as root)
# Needs podman and debootstrap (Debian packages). The mirror is the one apt already uses.
set -euo pipefail
IMAGE=${1:-localhost/bookworm-py}
if podman image exists "$IMAGE"; then
  echo "container_base: $IMAGE exists"
  exit 0
fi
MIRROR=${DEBIAN_MIRROR:-$(grep -rhoE 'https?://[^ ]*debian\.org/debian/?' /etc/apt/sources.list.d/ /etc/apt/sources.list 2>/dev/null | head -1 || true)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
ROOTFS=$(mktemp -d /var/tmp/bookworm-rootfs.XXXXXX)
trap 'rm -rf "$ROOTFS"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  bookworm "$ROOTFS" "$MIRROR" > "$ROOTFS.log" 2>&1 || { tail -20 "$ROOTFS.log" >&2; exit 1; }
rm -f "$ROOTFS.log"
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
tar -C "$ROOTFS" -c . | podman import - "$IMAGE" > /dev/null
echo "container_base: built $IMAGE from $MIRROR"
