#!/usr/bin/env bash
# Installs what jaxnets needs on a fresh machine; a no-op in about a second when all is in place.
#   - the pinned Python packages of requirements.txt (for the interpreter named by $PYTHON, default python3),
#     and with --tests those of requirements-test.txt too (PyTorch and torchvision, for the weight-import tests);
#   - Debian's dataset-fashion-mnist (real Fashion-MNIST, offline) when running as root with apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
FILES=(requirements.txt)
case "${1:-}" in
  --tests) FILES+=(requirements-test.txt) ;;
  '') ;;
  *) echo "setup: unknown option '$1'; valid: --tests (also install the tests' requirements-test.txt)" >&2; exit 2 ;;
esac

for file in "${FILES[@]}"; do
  if ! "$PY" launch/check_requirements.py "$file"; then
    echo "setup: installing $file for $("$PY" --version)"
    "$PY" -m pip install --quiet --disable-pip-version-check -r "$file"
  fi
done

FASHION=/usr/share/datasets/fashion-mnist
if [ ! -f "$FASHION/train-images-idx3-ubyte.gz" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian's dataset-fashion-mnist"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
  else
    echo "setup: $FASHION is missing; install it with 'sudo apt-get install dataset-fashion-mnist'" \
         "(or prepare fashion_mnist with TFDS on a machine with network access)." >&2
  fi
fi
