#!/bin/sh
# Install DPDK from Debian so the interop tests have dpdk-testpmd.
#
# Idempotent: does nothing when dpdk-testpmd is already on PATH.
# Non-interactive, and waits for the dpkg lock because other installs may be
# running on the same machine at the same time.
set -eu

if command -v dpdk-testpmd >/dev/null 2>&1; then
    echo "dpdk-testpmd already installed: $(command -v dpdk-testpmd)"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-dpdk.sh: must run as root (it calls apt-get install)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# 'dpdk' ships dpdk-testpmd and the PMD plugins (net_vhost, virtio_user);
# 'dpdk-dev' brings headers and pkg-config files for anyone building against it.
apt-get install -y -o DPkg::Lock::Timeout=900 --no-install-recommends dpdk dpdk-dev

command -v dpdk-testpmd >/dev/null 2>&1 || {
    echo "install-dpdk.sh: dpdk-testpmd still missing after install" >&2
    exit 1
}
echo "dpdk-testpmd installed: $(command -v dpdk-testpmd)"
