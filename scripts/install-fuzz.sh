#!/bin/sh
# Install what the fuzz tests (tests/test_fuzz_*.py, docs/fuzzing.md) need:
# clang with the libFuzzer and sanitizer runtimes (Debian's clang and its
# libclang-rt dev package) for the C ring harnesses, and atheris (PyPI, also
# in the `test` extra) for the Python decoder/handler harnesses.
#
# Idempotent: installs only what is missing. Non-interactive, and waits for
# the dpkg lock because other installs may run on the same machine.
set -eu

have_libfuzzer() {
    command -v clang >/dev/null 2>&1 || return 1
    dir=$(mktemp -d)
    printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }\n' \
        > "$dir/t.c"
    ok=0
    clang -fsanitize=fuzzer,address,undefined "$dir/t.c" -o "$dir/t" >/dev/null 2>&1 || ok=1
    rm -rf "$dir"
    return $ok
}

if have_libfuzzer; then
    echo "install-fuzz.sh: clang with libFuzzer already installed"
else
    if [ "$(id -u)" -ne 0 ]; then
        echo "install-fuzz.sh: must run as root (it calls apt-get install) to add clang" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    # The runtime package is versioned: take the one of the default clang.
    apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends clang
    major=$(clang --version | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -n 1)
    apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends \
        "libclang-rt-$major-dev" || apt-get -o DPkg::Lock::Timeout=300 install -y \
        --no-install-recommends "libclang-common-$major-dev"
    have_libfuzzer || { echo "install-fuzz.sh: clang cannot link -fsanitize=fuzzer" >&2; exit 1; }
fi

if python3 -c 'import atheris' >/dev/null 2>&1; then
    echo "install-fuzz.sh: atheris already installed"
else
    python3 -m pip install --quiet --disable-pip-version-check 'atheris>=2.3'
fi
