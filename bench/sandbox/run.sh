#!/usr/bin/env bash
# The sandbox's overhead per command (crates/sandbox): the same commands run directly
# and in an episode's sandbox (bubblewrap, seccomp, rlimits, the home tree in and out),
# alternating, N times each (default 30); medians. Figures in docs/benchmarks.md
# ("Sandbox overhead").
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p shammie-sandbox --example overhead
echo "$(date -u +%F)  CPU: $(lscpu | sed -n 's/^Model name: *//p')  bwrap $(bwrap --version | cut -d' ' -f2)"
target/release/examples/overhead "${1:-30}"
