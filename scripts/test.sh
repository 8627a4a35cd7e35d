#!/usr/bin/env bash
# Installs what the tests need (Python packages, DPDK, tcpdump, QEMU and a
# guest kernel) and runs every test: the README's test command, and CI's.
# Extra arguments go to pytest (e.g. scripts/test.sh -k vhost).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -m pip install --quiet --disable-pip-version-check -e '.[test,jit]'; then
    # The package index could not be reached (it happens). The machine has
    # the dependencies already: build the native core in place and run this
    # checkout as the installed package would (the snabbpy command included).
    echo "pip could not install from the index; building in place instead" >&2
    python3 snabbpy/native_build.py
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
    bin=$(mktemp -d)
    printf '#!/bin/sh\nexec %s -m snabbpy "$@"\n' "$(command -v python3)" > "$bin/snabbpy"
    chmod +x "$bin/snabbpy"
    export PATH="$bin:$PATH"
fi

# The interop and VM tests need real peers; each script is idempotent.
for script in scripts/install-dpdk.sh scripts/install-netutils.sh scripts/install-fuzz.sh \
        scripts/setup-vm-lab.sh; do
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
