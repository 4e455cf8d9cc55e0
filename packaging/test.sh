#!/usr/bin/env bash
# Tests of the Debian and RPM packages, run by .ci/run (as root):
#
#   packaging/test.sh            # builds them with packaging/build.sh first
#   NO_BUILD=1 packaging/test.sh # packages the release binary already built
#
# 1. lintian reports no error on the .deb;
# 2. the .deb holds exactly the expected files, modes and conffile, and the .rpm the same
#    files (less Debian's changelog), the config marked noreplace, and its scriptlets;
#    the maintainer scripts of both, run with systemd's tools stubbed in a private mount
#    namespace (as if systemd ran, and as if not), create the user and the tmpfiles, reload
#    systemd, never enable or start, restart a running service on upgrade, stop it on
#    removal, and remove config and state on purge (deb) only; installed with rpm into a
#    scratch root (--noscripts), an edited config survives an upgrade to release 2 and is
#    saved as .rpmsave on erase;
# 3. installed with dpkg into a scratch root (dpkg --root, maintainer scripts run outside
#    it with DPKG_ROOT set): the binary runs, the user exists, nothing is enabled,
#    `systemd-analyze verify` and `security --offline=yes` pass on the installed unit
#    (exposure at most 1.8); an upgrade keeps an edited conffile; removal removes the
#    files and keeps the config; purge leaves the root as it was before the install.
# The running system is not touched (no user, no unit, no dpkg lock of its own).
# Any failure stops the script with a line starting "packaging/test.sh: FAIL".
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "packaging/test.sh: FAIL: $*" >&2; exit 1; }
step() { echo "== packaging: $*"; }
expect_same() { # description, expected, actual
    if [ "$2" != "$3" ]; then
        diff <(echo "$2") <(echo "$3") >&2 || true
        fail "$1 (lines with < expected, > found)"
    fi
}

[ "$(id -u)" = 0 ] || fail "run as root (dpkg --root installs the package into a scratch root)"
for tool in cargo dpkg dpkg-deb lintian rpm systemd-analyze strip file; do
    command -v "$tool" >/dev/null || fail "$tool not found (.ci/run installs it: lintian, rpm, binutils, file)"
done

target="${CARGO_TARGET_DIR:-target}"
out="$target/packages"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

start=$SECONDS
bash packaging/build.sh
echo "packaging/build.sh took $((SECONDS - start)) s"

shopt -s nullglob
debs=("$out"/alumet-agent_*.deb)
rpms=("$out"/alumet-agent-*.rpm)
shopt -u nullglob
[ ${#debs[@]} = 1 ] || fail "expected one .deb in $out, found ${#debs[@]}"
[ ${#rpms[@]} = 1 ] || fail "expected one .rpm in $out, found ${#rpms[@]}"
deb="${debs[0]}"
rpm_file="${rpms[0]}"

step "lintian $deb"
# --fail-on error: any error-level tag fails; warnings are printed for people to read.
lintian --fail-on error --tag-display-limit 0 "$deb" || fail "lintian reports errors on $deb"

step "files of the .deb"
expected_files="/etc/alumet/alumet-config.toml
/usr/bin/alumet-agent
/usr/lib/systemd/system/alumet-agent.service
/usr/lib/sysusers.d/alumet-agent.conf
/usr/lib/tmpfiles.d/alumet-agent.conf
/usr/share/doc/alumet-agent/README.md
/usr/share/doc/alumet-agent/changelog.Debian.gz
/usr/share/doc/alumet-agent/config.md
/usr/share/doc/alumet-agent/copyright
/usr/share/doc/alumet-agent/exec.md
/usr/share/doc/alumet-agent/service.md"
# dpkg-deb -c: mode, owner/group, size, date, time, ./path (regular files start with -).
deb_listing="$(dpkg-deb -c "$deb")"
deb_files="$(awk '$1 ~ /^-/ { sub(/^\./, "", $6); print $6 }' <<<"$deb_listing" | sort)"
expect_same ".deb file list" "$expected_files" "$deb_files"
not_root="$(awk '$2 != "root/root" && $2 != "0/0" { print }' <<<"$deb_listing")"
[ -z "$not_root" ] || fail "files not owned by root/root in the .deb: $not_root"
modes="$(awk '$1 ~ /^-/ { sub(/^\./, "", $6); print $1, $6 }' <<<"$deb_listing" | sort -k2)"
grep -qx -- '-rwxr-xr-x /usr/bin/alumet-agent' <<<"$modes" || fail "/usr/bin/alumet-agent is not 0755: $modes"
[ "$(grep -c -- '^-rw-r--r-- ' <<<"$modes")" = 10 ] || fail "every other file should be 0644: $modes"
expect_same ".deb conffiles" "/etc/alumet/alumet-config.toml" "$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)"
# (Lists are read into variables first: `producer | grep -q` fails under pipefail when
# grep stops reading early.)
control_files="$(dpkg-deb --ctrl-tarfile "$deb" | tar -t)"
for script in postinst prerm postrm; do
    grep -qx "./$script" <<<"$control_files" || fail "the .deb has no $script"
done
step "files of the .rpm"
rpm_files="$(rpm -qlp "$rpm_file" | sort)"
expect_same ".rpm file list (the .deb's, less changelog.Debian.gz)" \
    "$(grep -v '/changelog.Debian.gz$' <<<"$deb_files")" "$rpm_files"
expect_same ".rpm config files" "/etc/alumet/alumet-config.toml" "$(rpm -qcp "$rpm_file")"
flags="$(rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$rpm_file" | grep ' /etc/alumet/alumet-config.toml$')"
[[ "${flags%% *}" == *c* && "${flags%% *}" == *n* ]] || fail "the rpm's config is not marked config(noreplace): $flags"
rpm_modes="$(rpm -qp --qf '[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]' "$rpm_file")"
grep -qx -- '-rwxr-xr-x root:root /usr/bin/alumet-agent' <<<"$rpm_modes" || fail "rpm: /usr/bin/alumet-agent is not 0755 root:root: $rpm_modes"
scripts="$(rpm -qp --scripts "$rpm_file")"
grep -q '^postinstall scriptlet' <<<"$scripts" && grep -q 'systemd-sysusers alumet-agent.conf' <<<"$scripts" ||
    fail "the rpm's %post does not create the user: $scripts"
grep -q '^preuninstall scriptlet' <<<"$scripts" && grep -q 'disable --now alumet-agent.service' <<<"$scripts" ||
    fail "the rpm's %preun does not stop the service: $scripts"
grep -q '^postuninstall scriptlet' <<<"$scripts" || fail "the rpm has no %postun: $scripts"
if grep -q 'enable --now alumet-agent' <<<"$(sed -n '/^postinstall/,/^preuninstall/p' <<<"$scripts" | grep -v echo)"; then
    fail "the rpm's %post enables the service"
fi

step "maintainer scripts, with and without systemd running"
# Each script runs with systemd's tools stubbed (they append their command line to
# $work/calls), in a private mount namespace whose /run, /etc and /var/lib are empty tmpfs
# (the machine's are neither seen nor touched), holding /run/systemd/system when systemd
# is to look as running, a config in /etc/alumet and a CSV file in /var/lib/alumet. A
# directory still there afterwards is reported as "left DIR".
stubs="$work/stubs"
mkdir -p "$stubs"
for tool in systemd-sysusers systemd-tmpfiles systemctl deb-systemd-helper deb-systemd-invoke; do
    printf '#!/bin/sh\necho "%s $*" >>"%s"\n' "$tool" "$work/calls" >"$stubs/$tool"
    chmod 755 "$stubs/$tool"
done
cat >"$work/ns.sh" <<'NS'
set -e
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /etc
mount -t tmpfs tmpfs /var/lib
[ "$SYSTEMD" = no ] || mkdir -p /run/systemd/system
mkdir -p /etc/alumet /var/lib/alumet
echo 'plugin_dirs = []' >/etc/alumet/alumet-config.toml
echo 'metric;timestamp;value' >/var/lib/alumet/alumet-output.csv
sh "$@"
for dir in /etc/alumet /var/lib/alumet; do
    if [ -e "$dir" ]; then echo "left $dir" >>"$CALLS"; fi
done
NS
maint() { # yes|no (systemd running), script file, its arguments: prints the calls
    local systemd="$1"
    shift
    : >"$work/calls"
    SYSTEMD="$systemd" CALLS="$work/calls" PATH="$stubs:$PATH" unshare -m sh -e "$work/ns.sh" "$@" \
        >"$work/script.out" 2>&1 || { cat "$work/script.out" >&2; fail "${*/#$work\//} (systemd running: $systemd) failed"; }
    cat "$work/calls"
}
check_calls() { # description, expected calls, systemd running, script, arguments
    local what="$1" expected="$2"
    shift 2
    expect_same "$what: the commands it ran" "$expected" "$(maint "$@")"
}
mkdir -p "$work/debian"
dpkg-deb --ctrl-tarfile "$deb" | tar -x -C "$work/debian"
d="$work/debian"
kept="left /etc/alumet
left /var/lib/alumet"
sysusers="systemd-sysusers alumet-agent.conf
systemd-tmpfiles --create alumet-agent.conf"
dsh="deb-systemd-helper unmask alumet-agent.service
deb-systemd-helper update-state alumet-agent.service"
check_calls "deb postinst, first install, no systemd" "$sysusers
$dsh
$kept" no "$d/postinst" configure ""
grep -q 'systemctl enable --now alumet-agent' "$work/script.out" || fail "postinst does not say how to enable the service"
check_calls "deb postinst, first install, systemd running (reload, never enable or start)" "$sysusers
systemctl --system daemon-reload
$dsh
$kept" yes "$d/postinst" configure ""
check_calls "deb postinst, upgrade, systemd running (a running service restarts)" "$sysusers
systemctl --system daemon-reload
$dsh
deb-systemd-invoke try-restart alumet-agent.service
$kept" yes "$d/postinst" configure 0.1.0-1
check_calls "deb prerm remove, systemd running (stops the service)" "deb-systemd-invoke stop alumet-agent.service
$kept" yes "$d/prerm" remove
check_calls "deb prerm upgrade (no stop: postinst restarts)" "$kept" yes "$d/prerm" upgrade 0.1.0-2
check_calls "deb postrm remove (config and state kept)" "systemctl --system daemon-reload
$kept" yes "$d/postrm" remove
check_calls "deb postrm purge (config, state and enable links removed)" "deb-systemd-helper purge alumet-agent.service
deb-systemd-helper unmask alumet-agent.service
systemctl --system daemon-reload" yes "$d/postrm" purge
check_calls "deb postrm purge, no systemd" "deb-systemd-helper purge alumet-agent.service
deb-systemd-helper unmask alumet-agent.service" no "$d/postrm" purge

for tag in POSTIN PREUN POSTUN; do
    rpm -qp --qf "%{$tag}" "$rpm_file" >"$work/$tag.sh"
done
check_calls "rpm %post install, no systemd" "$sysusers
$kept" no "$work/POSTIN.sh" 1
grep -q 'systemctl enable --now alumet-agent' "$work/script.out" || fail "rpm %post does not say how to enable the service"
check_calls "rpm %post install, systemd running (reload, never enable or start)" "$sysusers
systemctl daemon-reload
$kept" yes "$work/POSTIN.sh" 1
check_calls "rpm %preun erase, systemd running (stops and disables)" "systemctl --no-reload disable --now alumet-agent.service
$kept" yes "$work/PREUN.sh" 0
check_calls "rpm %preun upgrade (no stop)" "$kept" yes "$work/PREUN.sh" 1
check_calls "rpm %postun upgrade, systemd running (a running service restarts)" "systemctl daemon-reload
systemctl try-restart alumet-agent.service
$kept" yes "$work/POSTUN.sh" 1
check_calls "rpm %postun erase (state kept, as RPM packages do)" "systemctl daemon-reload
$kept" yes "$work/POSTUN.sh" 0

step "rpm into a scratch root (files only: its scriptlets would run chrooted there)"
rpm_root="$work/rpm-root"
rpm_in_root() { # Debian's rpm warns on every install that apt is the tool there
    rpm --root="$rpm_root" --dbpath=/var/lib/rpm --nodeps --noscripts "$@" >"$work/rpm.log" 2>&1 ||
        { cat "$work/rpm.log" >&2; fail "rpm $*"; }
    grep -v 'use Alien\|what you are doing' "$work/rpm.log" || true
}
mkdir -p "$rpm_root"
rpm --root="$rpm_root" --dbpath=/var/lib/rpm --initdb
rpm_in_root -i "$rpm_file"
rpm_installed="$(cd "$rpm_root" && find . -path ./var/lib/rpm -prune -o -type f -print | sed 's/^\.//' | sort)"
expect_same "files installed by the rpm" "$rpm_files" "$rpm_installed"
echo '# edited by packaging/test.sh' >>"$rpm_root/etc/alumet/alumet-config.toml"
rpm_edited="$(cat "$rpm_root/etc/alumet/alumet-config.toml")"
stage="$work/stage" # release 2 of the same files, from the same stripped binary as build.sh's
mkdir -p "$stage/release"
strip --strip-unneeded -o "$stage/release/alumet-agent" "$target/release/alumet-agent"
mkdir -p "$work/rpm2"
cargo generate-rpm -p app-agent --target-dir "$stage" -s 'release = "2"' --output "$work/rpm2/" >/dev/null
rpm_in_root -U "$work"/rpm2/alumet-agent-*-2.*.rpm
expect_same "rpm after upgrade" "alumet-agent-0.1.0-2.x86_64" "$(rpm --root="$rpm_root" --dbpath=/var/lib/rpm -qa 2>/dev/null)"
expect_same "edited config after an rpm upgrade" "$rpm_edited" "$(cat "$rpm_root/etc/alumet/alumet-config.toml")"
rpm_in_root -e alumet-agent
left="$(cd "$rpm_root" && find . -path ./var/lib/rpm -prune -o -type f -print | sort)"
expect_same "after rpm -e: only the edited config, saved" "./etc/alumet/alumet-config.toml.rpmsave" "$left"

step "install into a scratch root"
root="$work/root"
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers"
: >"$root/var/lib/dpkg/status"
# The package's dependencies (libc6), as this machine has them, so that dpkg checks them.
depends="$(dpkg-deb -f "$deb" Depends)"
[ -n "$depends" ] || fail "the .deb has no Depends (cargo-deb's \$auto found no libc?)"
for dep in $(tr ',' '\n' <<<"$depends" | sed 's/[(|].*//' | tr -d ' '); do
    dpkg-query -s "$dep" >>"$root/var/lib/dpkg/status" || fail "dependency $dep is not installed here"
    echo >>"$root/var/lib/dpkg/status"
    : >"$root/var/lib/dpkg/info/$(dpkg-query -W -f '${binary:Package}' "$dep").list"
done
# systemd's own units, as on any system the package goes to: `systemd-analyze verify
# --root` resolves the unit's dependencies (sysinit.target, ...) and its ExecStart there.
[ -e /usr/lib/systemd/system/sysinit.target ] || fail "systemd's units are not in /usr/lib/systemd/system (install systemd)"
mkdir -p "$root/usr/lib/systemd/system"
cp -a /usr/lib/systemd/system/. "$root/usr/lib/systemd/system/"
# kill(1), which the unit's ExecReload runs (`systemctl reload`), as on any such system.
[ -x /bin/kill ] || fail "/bin/kill is missing here (install procps)"
mkdir -p "$root/bin"
cp -L /bin/kill "$root/bin/kill"
# Everything but dpkg's database, before the install: purge must come back to it.
snapshot() { (cd "$root" && find . -path ./var/lib/dpkg -prune -o -print | sort); }
before="$(snapshot)"
dpkg_root() { # dpkg in the scratch root; scripts run outside it with DPKG_ROOT set
    dpkg --root="$root" --force-script-chrootless --log=/dev/null "$@" </dev/null >"$work/dpkg.log" 2>&1 ||
        { cat "$work/dpkg.log" >&2; fail "dpkg $*"; }
    cat "$work/dpkg.log"
}
state() { dpkg-query --root="$root" -W -f '${Status} ${Version}' alumet-agent 2>/dev/null || echo "not known"; }
dpkg_root -i "$deb"
expect_same "dpkg state after install" "install ok installed 0.1.0-1" "$(state)"
grep -q 'systemctl enable --now alumet-agent' "$work/dpkg.log" || fail "postinst does not say how to enable the service"
for f in alumet-agent.service:usr/lib/systemd/system/alumet-agent.service \
    alumet-agent.sysusers:usr/lib/sysusers.d/alumet-agent.conf \
    alumet-agent.tmpfiles:usr/lib/tmpfiles.d/alumet-agent.conf \
    alumet-config.toml:etc/alumet/alumet-config.toml; do
    cmp "app-agent/packaging/${f%%:*}" "$root/${f#*:}" || fail "installed /${f#*:} differs from app-agent/packaging/${f%%:*}"
done

step "installed binary"
version="$("$root/usr/bin/alumet-agent" --version)" || fail "alumet-agent --version failed"
echo "$version"
[[ "$version" == *0.1.0* ]] || fail "alumet-agent --version says $version, the package is 0.1.0"
binary_type="$(file -b "$root/usr/bin/alumet-agent")"
[[ "$binary_type" == *", stripped"* ]] || fail "the packaged binary is not stripped: $binary_type"

step "user, tmpfiles, not enabled"
user_line="$(grep '^alumet:' "$root/etc/passwd")" || fail "postinst did not create the user alumet"
echo "$user_line"
[ "$(cut -d: -f6 <<<"$user_line")" = /var/lib/alumet ] || fail "alumet's home is not /var/lib/alumet: $user_line"
[ "$(cut -d: -f3 <<<"$user_line")" -lt 1000 ] || fail "alumet is not a system user: $user_line"
grep -q '^alumet:' "$root/etc/group" || fail "postinst did not create the group alumet"
enabled="$(find "$root/etc" -name 'alumet-agent.service' 2>/dev/null)"
[ -z "$enabled" ] || fail "the install enabled the service: $enabled"

step "systemd-analyze on the installed unit"
verify="$(systemd-analyze verify --root="$root" alumet-agent.service 2>&1)" || { echo "$verify" >&2; fail "systemd-analyze verify"; }
[ -z "$verify" ] || { echo "$verify" >&2; fail "systemd-analyze verify printed problems"; }
security="$(systemd-analyze security --offline=yes --root="$root" alumet-agent.service 2>&1)" ||
    { echo "$security" >&2; fail "systemd-analyze security --offline=yes"; }
exposure="$(sed -n 's/.*Overall exposure level for [^:]*: *\([0-9.]*\).*/\1/p' <<<"$security")"
[ -n "$exposure" ] || { echo "$security" >&2; fail "no exposure level in systemd-analyze security's output"; }
echo "exposure level: $exposure"
awk -v e="$exposure" 'BEGIN { exit !(e <= 1.8) }' || fail "exposure level $exposure is above 1.8"

step "upgrade keeps an edited conffile"
conf="$root/etc/alumet/alumet-config.toml"
echo '# edited by packaging/test.sh' >>"$conf"
edited="$(cat "$conf")"
cargo deb -p alumet-agent --no-build --strip --deb-revision 2 --output "$work/" >/dev/null
dpkg_root -i "$work"/alumet-agent_*-2_*.deb
expect_same "dpkg state after upgrade" "install ok installed 0.1.0-2" "$(state)"
expect_same "edited conffile after upgrade" "$edited" "$(cat "$conf")"
leftovers="$(find "$root/etc/alumet" -name '*.dpkg-*')"
[ -z "$leftovers" ] || fail "upgrade left $leftovers"

step "remove"
# What the service writes at run time (StateDirectory=alumet): purge must remove it.
mkdir -p "$root/var/lib/alumet"
echo 'metric;timestamp;value' >"$root/var/lib/alumet/alumet-output.csv"
dpkg_root -r alumet-agent
expect_same "dpkg state after remove" "deinstall ok config-files 0.1.0-2" "$(state)"
for f in usr/bin/alumet-agent usr/lib/systemd/system/alumet-agent.service \
    usr/lib/sysusers.d/alumet-agent.conf usr/lib/tmpfiles.d/alumet-agent.conf usr/share/doc/alumet-agent; do
    [ ! -e "$root/$f" ] || fail "/$f is still there after remove"
done
expect_same "conffile after remove" "$edited" "$(cat "$conf")"
[ -e "$root/var/lib/alumet/alumet-output.csv" ] || fail "remove deleted the state directory (only purge should)"

step "purge"
dpkg_root -P alumet-agent
expect_same "dpkg state after purge" "not known" "$(state)"
# Left: the user (as Debian packages do) and the directories dpkg's own database needs.
after="$(snapshot | grep -v -x -E '\./etc|\./etc/(passwd|group|shadow|gshadow)-?|\./etc/\.pwd\.lock')"
expect_same "the scratch root after purge (besides the user database)" "$before" "$after"

echo "packaging/test.sh: all checks passed in $((SECONDS - start)) s"
