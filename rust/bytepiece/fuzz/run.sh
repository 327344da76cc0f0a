#!/usr/bin/env bash
# Runs every fuzz target of the core for SECONDS each (default 60), with AddressSanitizer, and
# fails on the first crash (its input is left in artifacts/TARGET/). The corpora grow in
# corpus/TARGET/ (not committed); seeds/TARGET/ holds committed starting inputs and the inputs of
# every crash found so far. On the stable toolchain, RUSTC_BOOTSTRAP=1 lets cargo fuzz pass the
# compiler flags it needs. See tests/FUZZING.md.
#
#   bash rust/bytepiece/fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(model_load encode sample train tables)
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
cargo fuzz build -O
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "seeds/$t"
  echo "fuzz $t: ${secs}s"
  cargo fuzz run -O "$t" "corpus/$t" "seeds/$t" -- -max_total_time="$secs" -max_len=4096 -print_final_stats=1 2>&1 \
    | grep -E "^(Done|stat::number_of_executed_units|==[0-9]+==ERROR|thread .* panicked|SUMMARY)" || true
  if [ -n "$(ls -A "artifacts/$t" 2>/dev/null)" ]; then
    echo "fuzz $t: crash found, see rust/bytepiece/fuzz/artifacts/$t/" >&2
    exit 1
  fi
done
