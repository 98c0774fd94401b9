#!/usr/bin/env bash
# Builds target/pam-totp-<version>-1.<arch>.rpm with rpmbuild.
#
#   packaging/rpm/build.sh           package the release build as it is
#                                    (target/release/libpam_totp.so and
#                                    target/release/pam-totp; run
#                                    "cargo build --release --locked" first)
#   packaging/rpm/build.sh --source  build from a "git archive" tarball of HEAD,
#                                    running cargo in %build as a distribution
#                                    builder would (rpmbuild -ba; also writes
#                                    the .src.rpm)
#
# rpmbuild works in target/rpm (its _topdir). On Debian: apt-get install rpm.
# CARGO_TARGET_DIR is honoured as cargo does.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
spec=$repo/packaging/rpm/pam-totp.spec
target=${CARGO_TARGET_DIR:-$repo/target}
topdir=$target/rpm

die() { echo "packaging/rpm/build.sh: $*" >&2; exit 1; }

mode=prebuilt
case "${1:-}" in
"") ;;
--source) mode=source ;;
-h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
*) echo "usage: packaging/rpm/build.sh [--source]" >&2; exit 2 ;;
esac

command -v rpmbuild >/dev/null || die "rpmbuild not found (Debian: apt-get install rpm; Fedora: dnf install rpm-build)"

version=$(awk '
	/^\[/ { in_pkg = ($0 == "[package]") }
	in_pkg && /^version[[:space:]]*=/ { gsub(/.*=[[:space:]]*"|".*/, ""); print; exit }
' "$repo/Cargo.toml")
[ -n "$version" ] || die "no version in $repo/Cargo.toml"
# RPM versions cannot hold "-": a Cargo pre-release 0.2.0-rc.1 becomes 0.2.0~rc.1.
version=${version//-/\~}

rm -rf "$topdir"
mkdir -p "$topdir"/{BUILD,BUILDROOT,RPMS,SOURCES,SPECS,SRPMS}

# Outside an RPM system the build dependencies are not in the rpm database.
# Debian's rpm runs brp-compress (which needs bash's "read -d") with dash:
# run it with bash so man pages are compressed as on Fedora.
rpmopts=()
if [ -e /etc/debian_version ]; then
	rpmopts=(--nodeps --define "__brp_compress bash %{_rpmconfigdir}/brp-compress %{?_prefix}")
fi

if [ "$mode" = prebuilt ]; then
	for f in "$target/release/libpam_totp.so" "$target/release/pam-totp"; do
		[ -f "$f" ] || die "$f missing: run 'cargo build --release --locked' first"
	done
	rpmbuild -bb --quiet "${rpmopts[@]}" \
		--define "_topdir $topdir" \
		--define "_prebuilt 1" \
		--define "_srctree $repo" \
		--define "_cargo_target_dir $target" \
		--define "pkg_version $version" \
		"$spec"
else
	command -v git >/dev/null || die "git not found"
	git -C "$repo" archive --format=tar.gz --prefix="pam-totp-$version/" \
		-o "$topdir/SOURCES/pam-totp-$version.tar.gz" HEAD
	env -u CARGO_TARGET_DIR rpmbuild -ba --quiet "${rpmopts[@]}" \
		--define "_topdir $topdir" \
		--define "pkg_version $version" \
		"$spec"
fi

shopt -s nullglob
built=("$topdir"/RPMS/*/pam-totp-"$version"-*.rpm)
[ ${#built[@]} -gt 0 ] || die "rpmbuild produced no package"
for rpm in "${built[@]}"; do
	cp "$rpm" "$target/"
	echo "$target/$(basename "$rpm")"
done
