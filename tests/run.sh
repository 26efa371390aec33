#!/usr/bin/env bash
# The whole test suite of dunghan, lints included. Installs what is missing first
# (idempotent: a second run installs nothing), then runs fmt, clippy and every test.
#
#   ./tests/run.sh            # everything
#   ./tests/run.sh -- NAME    # extra arguments go to `cargo test` (e.g. a test name filter)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

# ---- prerequisites -----------------------------------------------------------------------
apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing apt packages: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
}

if ! command -v cargo >/dev/null; then
    echo "cargo is not installed: install the Rust toolchain (rustup) first" >&2
    exit 1
fi
# A C compiler for crates with C parts; protoc comes from the protoc-bin-vendored crate.
command -v cc >/dev/null || apt_install build-essential
# The serve tests send SIGTERM with the kill program (not the shell builtin), and lint
# the node's /metrics with promtool (Debian's prometheus package; no daemon is started).
[ -x /usr/bin/kill ] || [ -x /bin/kill ] || apt_install procps
command -v promtool >/dev/null || apt_install prometheus
# ---- ops kit (issue 6) --------------------------------------------------------------------
# The operations kit in deploy/ is checked by the real tools: promtool and a Prometheus
# daemon (Debian prometheus, above), amtool and the Alertmanager daemon (Debian
# prometheus-alertmanager; tests/ops.rs starts both daemons on free loopback ports, the
# package's own service is not used), and python3 with its yaml module for the Kubernetes
# and compose files.
command -v amtool >/dev/null || apt_install prometheus-alertmanager
command -v prometheus >/dev/null || apt_install prometheus
python3 -c 'import yaml' 2>/dev/null || apt_install python3 python3-yaml
# Fast checks first (tests/ops.rs runs them again, plus routes and a live Prometheus).
log "promtool / amtool: deploy/prometheus, deploy/alertmanager"
(cd deploy/prometheus \
    && promtool check config prometheus.yml prometheus-cluster.yml >/dev/null \
    && promtool check rules rules/*.yml \
    && promtool test rules tests/rules.test.yml)
amtool check-config deploy/alertmanager/alertmanager.yml
# ---- end of ops kit (issue 6) -------------------------------------------------------------

# ---- Kafka-protocol broker (issue 5) -----------------------------------------------------
# tests/kafka.rs runs `dunghan serve` in Kafka mode against a real broker: tansu 0.6.0,
# built from crates.io once (about 10 minutes) and reused from /var/tmp afterwards.
TANSU_ROOT="${TANSU_ROOT:-/var/tmp/dunghan-tools}"
TANSU_FEATURES="dynostore,libsql"
if [ "$(cat "$TANSU_ROOT/tansu.features" 2>/dev/null)" != "0.6.0 $TANSU_FEATURES" ] \
    || [ ! -x "$TANSU_ROOT/bin/tansu" ]; then
    log "installing the tansu 0.6.0 broker into $TANSU_ROOT (once; about 10 minutes)"
    cargo install tansu --version 0.6.0 --locked --features "$TANSU_FEATURES" \
        --root "$TANSU_ROOT" --force
    echo "0.6.0 $TANSU_FEATURES" > "$TANSU_ROOT/tansu.features"
fi
export TANSU="$TANSU_ROOT/bin/tansu"

for component in rustfmt clippy; do
    if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
        rustup component add "$component"
    fi
done

# ---- lints -------------------------------------------------------------------------------
log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

# ---- tests -------------------------------------------------------------------------------
# --all-targets also builds the criterion benches and runs each once in test mode.
log "cargo test"
cargo test --workspace --all-targets --locked "$@"
cargo test --workspace --doc --locked
