#!/bin/bash -eu
# Builds mqtwin's fuzz targets the way ClusterFuzzLite / OSS-Fuzz expect
# (https://google.github.io/clusterfuzzlite/build-integration/rust-lang/):
# `cargo fuzz build -O`, every binary copied to $OUT, each with its kept
# inputs (tests/regressions/<target>/) as $OUT/<target>_seed_corpus.zip.
#
# The engines set SRC, OUT, WORK, SANITIZER (address), FUZZING_ENGINE
# (libfuzzer), ARCHITECTURE (x86_64) and clang-specific CFLAGS/CXXFLAGS.
# cargo fuzz instruments the Rust code itself (-Zsanitizer=address, the
# SanitizerCoverage passes) and builds libFuzzer with the C++ compiler, so
# the C flags are cleared here, as the engines' own Rust projects do.
#
# twin_vs_kernel is left out: it compares the twin with the kernel's queues
# in fresh IPC namespaces and needs root with CAP_SYS_ADMIN and CAP_SETUID,
# which the engines' runners do not give (every input would fail at start).
# Run it on a machine of your own (docs/fuzzing.md).
#
# Test it without the engines:
#   SRC=$PWD/.. OUT=/tmp/out WORK=/tmp/work SANITIZER=address \
#     FUZZING_ENGINE=libfuzzer ARCHITECTURE=x86_64 bash .clusterfuzzlite/build.sh
set -euo pipefail
: "${SRC:?}" "${OUT:?}"
unset CFLAGS CXXFLAGS
cd "$SRC/mqtwin/fuzz"
TARGETS=(twin_ops echo_kit protocol_kit remote_frames)
for t in "${TARGETS[@]}"; do
  cargo fuzz build -O --debug-assertions "$t"
done
triple=$(rustc -vV | sed -n 's/^host: //p')
mkdir -p "$OUT"
for t in "${TARGETS[@]}"; do
  cp "target/$triple/release/$t" "$OUT/$t"
  if [ -d "../tests/regressions/$t" ]; then
    rm -f "$OUT/${t}_seed_corpus.zip"
    # zip is in the engines' images; python3's zipfile where it is not.
    if command -v zip >/dev/null; then
      (cd "../tests/regressions/$t" && zip -q -j "$OUT/${t}_seed_corpus.zip" ./*)
    else
      (cd "../tests/regressions/$t" && python3 -m zipfile -c "$OUT/${t}_seed_corpus.zip" ./*)
    fi
  fi
done
ls -l "$OUT"
