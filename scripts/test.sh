#!/usr/bin/env bash
# Installs what the tests need (Python packages, DPDK, tcpdump, QEMU and a
# guest kernel) and runs every test: the README's test command, and CI's.
# Extra arguments go to pytest (e.g. scripts/test.sh -k vhost).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'; then
    # The package index could not be reached (it happens): build the native
    # core with the setuptools and cffi already installed instead.
    echo "pip could not install from the index; building with installed tools" >&2
    python3 -m pip install --quiet --disable-pip-version-check \
        --no-build-isolation --no-deps -e .
fi

# The interop and VM tests need real peers; each script is idempotent.
for script in scripts/install-dpdk.sh scripts/install-netutils.sh scripts/setup-vm-lab.sh; do
    if [ -f "$script" ]; then
        echo "== $script"
        bash "$script"
    fi
done

echo "== ruff check"
python3 -m ruff check .

echo "== pytest"
status=0
python3 -m pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests: that is a failure" >&2
    exit 1
fi
exit "$status"
