#!/bin/sh
# Install the network tools the pcap, raw socket, tap and graph tests use:
# tcpdump (writes and reads the captures we compare against), iproute2
# (`ip netns`, `ip link ... type veth`), ping (iputils-ping: the Tap test
# pings one namespace from another through snabbpy), graphviz (`dot`,
# for `snabbpy graph --format png|svg`), libpcap0.8 (the library
# filter.PcapFilter and the `filter:` keys compile expressions with) and
# tshark (with editcap and mergecap: writes and reads the pcapng captures
# the pcapng tests compare).
#
# Idempotent: installs only what is missing. Non-interactive, and waits for
# the dpkg lock because other installs may run on the same machine.
set -eu

missing=""
command -v tcpdump >/dev/null 2>&1 || [ -x /usr/bin/tcpdump ] || [ -x /usr/sbin/tcpdump ] \
    || missing="$missing tcpdump"
command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || missing="$missing iproute2"
command -v ping >/dev/null 2>&1 || missing="$missing iputils-ping"
command -v dot >/dev/null 2>&1 || missing="$missing graphviz"
have_libpcap() { ldconfig -p 2>/dev/null | grep -q 'libpcap\.so\.0\.8'; }
have_libpcap || missing="$missing libpcap0.8"
command -v tshark >/dev/null 2>&1 || missing="$missing tshark"
command -v editcap >/dev/null 2>&1 || missing="$missing wireshark-common"

if [ -z "$missing" ]; then
    echo "install-netutils.sh: tcpdump, ip, ping, dot, libpcap and tshark already installed"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-netutils.sh: must run as root (it calls apt-get install) to add:$missing" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture: answer no, never prompt.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
# shellcheck disable=SC2086 # the package list is meant to split
apt-get install -y -o DPkg::Lock::Timeout=900 --no-install-recommends $missing

for tool in tcpdump ip ping dot tshark editcap mergecap; do
    PATH="$PATH:/usr/sbin:/sbin" command -v "$tool" >/dev/null 2>&1 || {
        echo "install-netutils.sh: $tool still missing after install" >&2
        exit 1
    }
done
have_libpcap || { echo "install-netutils.sh: libpcap.so.0.8 still missing after install" >&2; exit 1; }
echo "install-netutils.sh: installed:$missing"
