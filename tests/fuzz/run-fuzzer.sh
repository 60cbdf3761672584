#!/bin/sh
# Runs one libFuzzer target for a bounded time over its seed corpus. New inputs go to a
# scratch directory (removed afterwards), never into the source tree; crashes are kept in
# the build directory for inspection.
set -eu
exe=$1 seeds=$2 artifacts=$3 seconds=${4:-30}
scratch=$(mktemp -d /tmp/strata-fuzz-XXXXXX)
trap 'rm -rf "$scratch"' EXIT INT TERM
"$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$scratch" "$seeds"
