#!/usr/bin/env bash
# Builds the container image of alumet-agent, without a container engine:
#
#   packaging/image.sh            # -> $CARGO_TARGET_DIR/packages/alumet-agent-image.tar
#   NO_BUILD=1 packaging/image.sh # packs the release binary already built
#
# The archive is an OCI image layout (oci-layout, index.json, blobs/sha256/...) with
# Docker's manifest.json beside it, tagged alumet-agent:VERSION and alumet-agent:latest.
# Load it with `docker load -i FILE`, `podman load -i FILE`, or
# `skopeo copy oci-archive:FILE docker://REGISTRY/alumet-agent:VERSION`; then set `image:`
# in deploy/kubernetes/daemonset.yaml.
#
# One layer: the stripped release binary at /usr/bin/alumet-agent and the only libraries
# it loads (the C library and the dynamic loader, copied from the build machine: the
# binary needs that glibc or a newer one), nothing else: no shell, no package manager.
# The entry point is the agent; the default arguments run it on
# /etc/alumet/alumet-config.toml (the DaemonSet's ConfigMap). The layer is reproducible:
# files sorted, owned by root, dated from the last commit (SOURCE_DATE_EPOCH overrides).
# Needs: cargo, strip (binutils), tar, gzip, sha256sum, ldd.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-target}"
out="$target/packages"
image="$out/alumet-agent-image.tar"

for tool in strip tar gzip sha256sum ldd; do
    command -v "$tool" >/dev/null || { echo "image.sh: $tool not found" >&2; exit 1; }
done
if [ -z "${NO_BUILD:-}" ]; then
    echo "== cargo build --release -p alumet-agent"
    cargo build --release -p alumet-agent
fi
binary="$target/release/alumet-agent"
[ -x "$binary" ] || { echo "image.sh: no release binary at $binary" >&2; exit 1; }

version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
epoch="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}"
created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
mkdir -p "$root/usr/bin" "$root/etc/alumet" "$root/tmp"
chmod 1777 "$root/tmp"
strip -o "$root/usr/bin/alumet-agent" "$binary"

# The libraries the binary loads, at the paths it asks for (the loader's path is in the
# binary itself), as files, not links.
ldd "$binary" | awk '/=> \// { print $3 } /^\t\// { print $1 }' | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done
# A user table for tools that look up uid 0 (the agent runs as root on the node).
printf 'root:x:0:0:root:/:/usr/bin/alumet-agent\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"

layout="$work/layout"
blobs="$layout/blobs/sha256"
mkdir -p "$blobs"
tar --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner \
    --format=gnu \
    -C "$root" -cf "$work/layer.tar" .
diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
gzip -n -9 < "$work/layer.tar" > "$work/layer.tar.gz"
layer=$(sha256sum "$work/layer.tar.gz" | cut -d' ' -f1)
layer_size=$(stat -c %s "$work/layer.tar.gz")
mv "$work/layer.tar.gz" "$blobs/$layer"

# The blob of a JSON document; prints its digest and size.
blob() { # json
    local file="$work/blob"
    printf '%s' "$1" > "$file"
    local digest
    digest=$(sha256sum "$file" | cut -d' ' -f1)
    mv "$file" "$blobs/$digest"
    echo "$digest $(stat -c %s "$blobs/$digest")"
}

config_json=$(cat <<EOF
{"architecture":"amd64","os":"linux","created":"$created",\
"config":{"Entrypoint":["/usr/bin/alumet-agent"],\
"Cmd":["--config","/etc/alumet/alumet-config.toml","--no-default-config","run"],\
"Env":["PATH=/usr/bin","RUST_LOG=info"],"ExposedPorts":{"9091/tcp":{}},\
"Labels":{"org.opencontainers.image.title":"alumet-agent","org.opencontainers.image.version":"$version"}},\
"rootfs":{"type":"layers","diff_ids":["sha256:$diff_id"]},\
"history":[{"created":"$created","created_by":"packaging/image.sh"}]}
EOF
)
read -r config config_size <<< "$(blob "$config_json")"

manifest_json=$(cat <<EOF
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",\
"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:$config","size":$config_size},\
"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:$layer","size":$layer_size}]}
EOF
)
read -r manifest manifest_size <<< "$(blob "$manifest_json")"

descriptor() { # tag
    printf '{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"docker.io/library/alumet-agent:%s","org.opencontainers.image.ref.name":"%s"}}' \
        "$manifest" "$manifest_size" "$1" "$1"
}
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[%s,%s]}' \
    "$(descriptor "$version")" "$(descriptor latest)" > "$layout/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' > "$layout/oci-layout"
printf '[{"Config":"blobs/sha256/%s","RepoTags":["alumet-agent:%s","alumet-agent:latest"],"Layers":["blobs/sha256/%s"]}]' \
    "$config" "$version" "$layer" > "$layout/manifest.json"

mkdir -p "$out"
tar --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner \
    -C "$layout" -cf "$image" oci-layout index.json manifest.json blobs
echo "image: $image (alumet-agent:$version and :latest, manifest sha256:$manifest, layer $((layer_size / 1024)) kB)"
