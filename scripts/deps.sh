#!/usr/bin/env bash
# Installs the system packages a target needs: as root on Debian/Ubuntu it runs apt-get;
# otherwise it says exactly what to install. Usage: scripts/deps.sh build|test|bench
set -euo pipefail
what=${1:-build}
pkgs=(libpam0g-dev pkg-config)
case "$what" in
  test)  pkgs+=(oathtool pamtester libpam-wrapper faketime openssh-server openssh-client sudo expect python3 valgrind strace) ;;
  bench) pkgs+=(libpam-google-authenticator libpam-oath valgrind strace oathtool) ;;
esac
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
elif command -v apt-get >/dev/null; then
  echo "missing packages: ${missing[*]}" >&2
  echo "run: sudo apt-get install ${missing[*]}" >&2
  [ "$what" = build ] && exit 1 || exit 0
else
  echo "not a Debian/Ubuntu system: install the equivalents of ${missing[*]} (e.g. pam-devel on RHEL/Fedora)" >&2
fi
