#!/usr/bin/env bash
# Tests of the container image, run by .ci/run (as root):
#
#   packaging/image-test.sh            # builds the release binary first
#   NO_BUILD=1 packaging/image-test.sh # packs the release binary already built
#
# 1. packaging/image.sh twice gives the same archive, byte for byte (reproducible);
# 2. skopeo reads it as an OCI archive under both tags and copies it (checking every
#    digest and size); its config has the agent as entry point, the DaemonSet's arguments
#    as default command, PATH and the metrics port;
# 3. umoci unpacks it: the root holds exactly the binary, the C library, the loader, the
#    user table and the empty /etc/alumet and /tmp;
# 4. runc runs it as a container, read-only root, the config bind-mounted where the
#    DaemonSet's ConfigMap goes: the agent measures with procfs into a CSV file on a
#    mounted directory, and stops on SIGTERM with exit 0 after writing its rows.
# Any failure stops the script with a line starting "packaging/image-test.sh: FAIL".
# Needs: skopeo, umoci, runc, python3 (and what packaging/image.sh needs).
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "packaging/image-test.sh: FAIL: $*" >&2; exit 1; }
step() { echo "== image: $*"; }
for tool in skopeo umoci runc python3; do
    command -v "$tool" >/dev/null || fail "$tool not found (apt-get install $tool)"
done

target="${CARGO_TARGET_DIR:-target}"
image="$target/packages/alumet-agent-image.tar"
work=$(mktemp -d)
container="alumet-image-test-$$"
cleanup() {
    runc delete --force "$container" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

step "build, twice"
bash packaging/image.sh
first=$(sha256sum "$image" | cut -d' ' -f1)
NO_BUILD=1 bash packaging/image.sh >/dev/null
second=$(sha256sum "$image" | cut -d' ' -f1)
[ "$first" = "$second" ] || fail "two builds differ: $first then $second"

step "skopeo: both tags, digests, config"
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
for tag in latest "$version"; do
    skopeo inspect "oci-archive:$image:$tag" >/dev/null || fail "no tag $tag"
done
skopeo copy --quiet "oci-archive:$image:latest" "oci:$work/layout:latest" \
    || fail "skopeo could not copy the image (a digest or size is wrong)"
skopeo inspect --config "oci-archive:$image:latest" > "$work/config.json"
python3 - "$work/config.json" <<'EOF' || fail "the image config is not what the DaemonSet runs"
import json, sys
c = json.load(open(sys.argv[1]))["config"]
assert c["Entrypoint"] == ["/usr/bin/alumet-agent"], c["Entrypoint"]
assert c["Cmd"] == ["--config", "/etc/alumet/alumet-config.toml", "--no-default-config", "run"], c["Cmd"]
assert "PATH=/usr/bin" in c["Env"], c["Env"]
assert "9091/tcp" in c["ExposedPorts"], c["ExposedPorts"]
EOF
# The DaemonSet runs `alumet-agent` (found on the image's PATH) with the same arguments.
python3 - deploy/kubernetes/daemonset.yaml <<'EOF' || fail "daemonset.yaml and the image disagree"
import sys
text = open(sys.argv[1]).read()
assert 'command: ["alumet-agent"]' in text
args = ["--config", "/etc/alumet/alumet-config.toml", "--no-default-config", "run"]
assert "\n".join("            - " + a for a in args) in text
EOF

step "umoci: the files of the root"
umoci unpack --image "$work/layout:latest" "$work/bundle" >/dev/null
rootfs="$work/bundle/rootfs"
files=$(cd "$rootfs" && find . -mindepth 1 \( -type f -o -type d -empty \) | sort)
expected=$(printf '%s\n' ./etc/alumet ./etc/group ./etc/passwd \
    ./lib/x86_64-linux-gnu/libc.so.6 ./lib64/ld-linux-x86-64.so.2 ./tmp ./usr/bin/alumet-agent | sort)
if [ "$files" != "$expected" ]; then
    diff <(echo "$expected") <(echo "$files") >&2 || true
    fail "the image's files are not the expected ones"
fi
[ "$(stat -c %a "$rootfs/tmp")" = 1777 ] || fail "/tmp is not 1777"

step "runc: the agent measures in a container"
mkdir -p "$work/out"
cat > "$work/alumet-config.toml" <<'EOF'
[plugins.procfs.kernel]
poll_interval = "100ms"
flush_interval = "100ms"
[plugins.procfs.memory]
enabled = false
[plugins.procfs.processes]
enabled = false
[plugins.csv]
output_path = "/out/out.csv"
force_flush = true
EOF
python3 - "$work/bundle/config.json" "$work" <<'EOF'
import json, sys
path, work = sys.argv[1], sys.argv[2]
c = json.load(open(path))
c["process"]["terminal"] = False
c["root"]["readonly"] = True
c["mounts"] += [
    {"destination": "/etc/alumet/alumet-config.toml", "type": "bind",
     "source": work + "/alumet-config.toml", "options": ["rbind", "ro"]},
    {"destination": "/out", "type": "bind", "source": work + "/out", "options": ["rbind", "rw"]},
]
json.dump(c, open(path, "w"))
EOF
(cd "$work/bundle" && exec runc run "$container" > "$work/stdout" 2> "$work/stderr") &
runner=$!
rows() { cat "$work/out/out.csv" 2>/dev/null | grep -c '^kernel_cpu_time' || true; }
for _ in $(seq 100); do
    [ "$(rows)" -ge 40 ] && break
    kill -0 "$runner" 2>/dev/null || break
    sleep 0.1
done
[ "$(rows)" -ge 40 ] || { cat "$work/stderr" >&2; ls -la "$work/out" >&2; head -5 "$work/out/out.csv" >&2; fail "no kernel_cpu_time rows from the container in 10 s"; }
runc kill "$container" TERM
code=0
wait "$runner" || code=$?
[ "$code" = 0 ] || { cat "$work/stderr" >&2; fail "the agent exited with $code on SIGTERM"; }
grep -q "running plugins: procfs, csv" "$work/stderr" || { cat "$work/stderr" >&2; fail "no start line"; }
grep -q "output csv/csv: [0-9]* points written, 0 dropped (queue full), 0 lost" "$work/stderr" \
    || { cat "$work/stderr" >&2; fail "no shutdown report"; }
echo "image: $(rows) rows of kernel_cpu_time from the container; layer $(( $(stat -c %s "$image") / 1024 )) kB archive"
echo "packaging/image-test.sh: all passed"
