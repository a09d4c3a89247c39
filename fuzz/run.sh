#!/usr/bin/env bash
# Fuzzes imfilter's TIFF, FITS and HDF5 reading: each target in fuzz/fuzz_targets for SECONDS seconds.
#
#   fuzz/run.sh 60
#
# Installs cargo-fuzz when missing. libFuzzer needs nightly `-Z` flags; on a stable toolchain
# RUSTC_BOOTSTRAP=1 lets them through. Inputs a run discovers go to fuzz/corpus-work/ (ignored
# by git); the committed seeds in fuzz/corpus/ stay as they are. A crash stops the script with
# status 1 and leaves its input in fuzz/artifacts/<target>/: minimise it with
# `cargo fuzz tmin <target> <file>` and add it as a regression test in tests/cli/reliability.rs.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${1:?usage: fuzz/run.sh SECONDS}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: fuzz/run.sh SECONDS (a whole number of seconds, at least 1)" >&2
    exit 2
fi
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

targets=(stack_reader info fits_reader hdf5_reader)
cargo fuzz build  # every target
for target in "${targets[@]}"; do
    mkdir -p "corpus-work/$target"
    echo "fuzz: $target for ${seconds} s"
    # -rss_limit_mb: an input that makes the reader take more than 1 GiB is a bug (promise 5).
    # -timeout: one input taking more than 10 s is a hang.
    # The log keeps libFuzzer's summary, not its per-discovery lines or suggested dictionary.
    set +o errexit
    cargo fuzz run "$target" "corpus-work/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=1024 -timeout=10 -max_len=65536 \
        -print_final_stats=1 2>&1 | grep -v -E '^(#[0-9]+|"|###)'
    status=${PIPESTATUS[0]}
    set -o errexit
    if [ "$status" -ne 0 ]; then
        echo "fuzz: $target failed (status $status); the input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
done
