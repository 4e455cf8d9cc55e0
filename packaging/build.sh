#!/usr/bin/env bash
# Builds the Debian and RPM packages of alumet-agent from a clean checkout:
#
#   packaging/build.sh        # -> $CARGO_TARGET_DIR/packages/alumet-agent_*.deb and *.rpm
#
# The metadata (files, destinations, maintainer scripts) is in app-agent/Cargo.toml;
# the files themselves are in app-agent/packaging/. NO_BUILD=1 packages the release binary
# already built instead of running `cargo build --release` (the build takes most of the
# time: LTO, one codegen unit). The tools come from crates.io when missing, at the
# versions this script was written for. Needs: cargo, strip (binutils).
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DEB_VERSION=3.8.0
CARGO_GENERATE_RPM_VERSION=0.21.1

target="${CARGO_TARGET_DIR:-target}"
out="$target/packages"

need_tool() { # cargo subcommand, crate, version
    if ! cargo "$1" --version >/dev/null 2>&1; then
        echo "== cargo install $2@$3"
        cargo install --locked "$2@$3"
    fi
}
need_tool deb cargo-deb "$CARGO_DEB_VERSION"
need_tool generate-rpm cargo-generate-rpm "$CARGO_GENERATE_RPM_VERSION"
command -v strip >/dev/null || { echo "build.sh: strip not found (install binutils)" >&2; exit 1; }

if [ -z "${NO_BUILD:-}" ]; then
    echo "== cargo build --release -p alumet-agent"
    cargo build --release -p alumet-agent
fi
binary="$target/release/alumet-agent"
[ -x "$binary" ] || { echo "build.sh: no release binary at $binary" >&2; exit 1; }

rm -rf "$out"
mkdir -p "$out"

echo "== cargo deb"
# --strip: the release profile keeps line tables (for backtraces), which cargo-deb
# would otherwise ship; the package gets the stripped binary.
cargo deb -p alumet-agent --no-build --strip --output "$out/"

echo "== cargo generate-rpm"
# generate-rpm does not strip: it reads target/release/alumet-agent from the directory
# given by --target-dir, here a stripped copy.
stage="$target/packaging-stage"
rm -rf "$stage"
mkdir -p "$stage/release"
strip --strip-unneeded -o "$stage/release/alumet-agent" "$binary"
cargo generate-rpm -p app-agent --target-dir "$stage" --output "$out/"
rm -rf "$stage"

ls -l "$out"
