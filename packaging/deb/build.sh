#!/usr/bin/env bash
# Builds target/pam-totp_<version>_<arch>.deb with dpkg-deb from the release
# build (target/release/libpam_totp.so and target/release/pam-totp; run
# "cargo build --release --locked" or "make deb" first). No cargo-deb, no
# debhelper, no downloads: only dpkg-deb, gzip and, if present, dpkg-shlibdeps.
#
# Environment:
#   CARGO_TARGET_DIR  where cargo put its output (default: <repo>/target);
#                     the artifacts are read from $CARGO_TARGET_DIR/release
#                     and the .deb is written to $CARGO_TARGET_DIR
#   DEB_MAINTAINER    the Maintainer field
#   DEB_REVISION      appended as <version>-<revision> when set
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
here=$repo/packaging/deb
target=${CARGO_TARGET_DIR:-$repo/target}
release=$target/release
maintainer=${DEB_MAINTAINER:-pam-totp maintainers <pam-totp@example.org>}

die() { echo "packaging/deb/build.sh: $*" >&2; exit 1; }

for tool in dpkg-deb gzip; do
	command -v "$tool" >/dev/null || die "$tool not found (apt-get install dpkg)"
done
for f in "$release/libpam_totp.so" "$release/pam-totp"; do
	[ -f "$f" ] || die "$f missing: run 'cargo build --release --locked' first"
done

# Version: the first "version =" of [package] in Cargo.toml.
version=$(awk '
	/^\[/ { in_pkg = ($0 == "[package]") }
	in_pkg && /^version[[:space:]]*=/ { gsub(/.*=[[:space:]]*"|".*/, ""); print; exit }
' "$repo/Cargo.toml")
[ -n "$version" ] || die "no version in $repo/Cargo.toml"
# A Cargo pre-release (0.2.0-rc.1) sorts before its release in Debian as 0.2.0~rc.1.
debversion=${version//-/\~}${DEB_REVISION:+-$DEB_REVISION}

arch=$(dpkg --print-architecture)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null ||
	gcc -print-multiarch 2>/dev/null || true)
[ -n "$multiarch" ] || die "cannot tell the multiarch triplet (apt-get install dpkg-dev)"

stage=$(mktemp -d "${TMPDIR:-/tmp}/pam-totp-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT
root=$stage/root
doc=$root/usr/share/doc/pam-totp
umask 022

# Files. Modes are set explicitly; ownership is root:root via --root-owner-group.
install -d -m 0755 "$root/DEBIAN" "$root/usr/bin" "$root/usr/lib/$multiarch/security" \
	"$root/usr/share/man/man1" "$root/usr/share/man/man5" "$root/usr/share/man/man8" \
	"$root/usr/share/pam-configs" "$root/etc/security" "$doc" "$doc/examples"
install -m 0644 "$release/libpam_totp.so" "$root/usr/lib/$multiarch/security/pam_totp.so"
install -m 0755 "$release/pam-totp" "$root/usr/bin/pam-totp"
for page in pam-totp.1 pam_totp.conf.5 pam_totp.8; do
	gzip -9n <"$repo/packaging/man/$page" >"$root/usr/share/man/man${page##*.}/$page.gz"
	chmod 0644 "$root/usr/share/man/man${page##*.}/$page.gz"
done
install -m 0644 "$repo/config/pam-auth-update/pam-totp" "$root/usr/share/pam-configs/pam-totp"
install -m 0644 "$repo/config/pam_totp.conf" "$root/etc/security/pam_totp.conf"

# Documentation: copyright, README, changelog, and the config/ examples.
install -m 0644 "$here/copyright" "$doc/copyright"
[ -f "$repo/README.md" ] && install -m 0644 "$repo/README.md" "$doc/README.md"
install -m 0644 "$repo/config/pam_totp.conf" "$doc/examples/pam_totp.conf"
install -m 0644 "$here/README.pam-auth-update" "$doc/examples/README.pam-auth-update"
for sub in pam.d sshd_config.d; do
	[ -d "$repo/config/$sub" ] || continue
	for f in "$repo/config/$sub"/*; do
		[ -f "$f" ] || continue
		install -d -m 0755 "$doc/examples/$sub"
		install -m 0644 "$f" "$doc/examples/$sub/"
	done
done
# A version without a Debian revision is a native package: changelog.gz.
changelog=changelog.gz
[ -z "${DEB_REVISION:-}" ] || changelog=changelog.Debian.gz
date=$(date -u -R -d "@${SOURCE_DATE_EPOCH:-$(stat -c %Y "$repo/Cargo.toml")}")
printf 'pam-totp (%s) unstable; urgency=medium\n\n  * Package built from the pam-totp tree (packaging/deb/build.sh).\n\n -- %s  %s\n' \
	"$debversion" "$maintainer" "$date" | gzip -9n >"$doc/$changelog"
# Policy 12.3: documentation over 4 kB is compressed (copyright never).
find "$doc" -type f ! -name copyright ! -name '*.gz' -size +4k -exec gzip -9n {} +
find "$doc" -type f -exec chmod 0644 {} +

# Maintainer scripts and conffiles.
install -m 0755 "$here/postinst" "$here/prerm" "$here/postrm" "$root/DEBIAN/"
echo /etc/security/pam_totp.conf >"$root/DEBIAN/conffiles"
chmod 0644 "$root/DEBIAN/conffiles"

# md5sums for debsums / dpkg --verify (conffiles are tracked by dpkg itself).
(cd "$root" && find . -type f ! -path './DEBIAN/*' ! -path './etc/*' -printf '%P\0' | LC_ALL=C sort -z |
	xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums"

# Depends: from the binaries' NEEDED entries when dpkg-shlibdeps is there.
depends=
if command -v dpkg-shlibdeps >/dev/null; then
	mkdir -p "$stage/src/debian"
	printf 'Source: pam-totp\n\nPackage: pam-totp\nArchitecture: any\n' >"$stage/src/debian/control"
	depends=$(cd "$stage/src" && dpkg-shlibdeps -O --warnings=0 \
		"$root/usr/bin/pam-totp" "$root/usr/lib/$multiarch/security/pam_totp.so" 2>/dev/null |
		sed -n 's/^shlibs:Depends=//p') || depends=
fi
if [ -z "$depends" ]; then
	echo "packaging/deb/build.sh: dpkg-shlibdeps unavailable or failed; using a fixed Depends" >&2
	depends="libc6, libgcc-s1, libpam0g"
fi
# pam-auth-update and /usr/share/pam-configs come from libpam-runtime.
depends="$depends, libpam-runtime (>= 1.0.1-6)"

installed_size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<EOF
Package: pam-totp
Version: $debversion
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $installed_size
Depends: $depends
Section: admin
Priority: optional
Description: TOTP/HOTP second factor for PAM, with an enrollment tool
 pam_totp.so asks for a one-time code from an authenticator app (TOTP,
 RFC 6238, or HOTP, RFC 4226) after the password or SSH key, with replay
 protection, a per-user rate limit and single-use scratch codes. Secrets
 live in ~/.pam_totp or, for sudo and su, root-owned in /var/lib/pam-totp.
 .
 The pam-totp command enrolls users (QR code in the terminal), imports
 google-authenticator files, shows and resets state, runs real PAM logins
 to test a configuration, diagnoses an installation and turns the second
 factor on for sshd and sudo with an automatic roll-back.
 .
 Nothing is enabled on installation; a pam-auth-update profile is provided.
EOF
chmod 0644 "$root/DEBIAN/control"

out=$target/pam-totp_${debversion}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
echo "$out"
