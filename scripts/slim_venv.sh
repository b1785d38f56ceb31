#!/usr/bin/env bash
# Removes from a virtual environment what nothing imports at run time: torch's C++ headers
# and test binaries, the bundled test suites of the big libraries (about 300 MB in the image).
#   scripts/slim_venv.sh VENV
set -euo pipefail
SITE=$(echo "${1:?usage: scripts/slim_venv.sh VENV}"/lib/python3*/site-packages)
rm -rf "$SITE/torch/include" "$SITE/torch/test"
find "$SITE/torch/bin" -type f ! -name torch_shm_manager -delete
for lib in pandas numpy scipy matplotlib pyarrow sympy; do
  [ -d "$SITE/$lib" ] && find "$SITE/$lib" -type d -name tests -prune -exec rm -rf {} +
done
true
