# Sourced by the exec-*.sh benchmarks: N (the first argument, 21 by default), a work
# directory removed at exit, a fresh copy of the agent there (AGENT, the release build by
# default) and the generated default config. Fresh, because how a binary's pages sit in the
# page cache changes its start-up by up to 0.6 ms on the development VM (an older copy of
# the same build measured 3.39 ms where a fresh copy measured 3.14): two builds are
# compared only as fresh copies.
n="${1:-21}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "${AGENT:-target/release/alumet-agent}" "$work/agent"
agent="$work/agent"
"$agent" --config "$work/alumet-config.toml" config regen >/dev/null
