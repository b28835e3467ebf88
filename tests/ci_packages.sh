#!/usr/bin/env bash
# Install the Debian packages the tests need beyond Python: Debian's chromium for the
# report's browser test, and a single-node Slurm cluster with accounting for the
# Slurm tests. Needs root and apt-get; exits non-zero (saying why) when either is
# missing or the install fails.
set -euo pipefail

PACKAGES=(chromium chromium-driver slurm-wlm slurm-client slurmdbd munge mariadb-server)

if [ "$(id -u)" -ne 0 ]; then
    echo "ci_packages: not root; cannot install ${PACKAGES[*]}" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null; then
    echo "ci_packages: no apt-get; install ${PACKAGES[*]} by hand" >&2
    exit 1
fi
all_installed() {
    [ "$(dpkg-query -W -f='${Status}\n' "${PACKAGES[@]}" 2>/dev/null | grep -c '^install ok installed$')" \
        -eq "${#PACKAGES[@]}" ]
}
if ! all_installed; then
    apt-get update -q
    # the packages' own service start-up is left to start_cluster.sh
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"
fi
dpkg-query -W -f='${Package} ${Version}\n' "${PACKAGES[@]}"
