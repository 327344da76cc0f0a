#!/usr/bin/env bash
# Runs every test: the Rust core alone (cargo test), then the Python package as users call it.
# Installs the package and its test extras first. The corpus parity tests need $BYTEPIECE_CORPUS
# (shared/corpus/build_corpus.sh DIR); the live-oracle tests need the original bytepiece.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q ".[test]"
cargo test --release -p bytepiece
python3 -m pytest -q -p no:cacheprovider tests
