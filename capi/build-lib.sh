#!/usr/bin/env bash
# Builds libmqtwin: `cargo build -p mqtwin-capi` (the Rust code with the C
# shim inside, as the static library libmqtwin_capi.a), then
#   target/<profile>/libmqtwin.a   a copy of it, for -lmqtwin
#   target/<profile>/libmqtwin.so  (.dylib on macOS) linked from it by the C
#                                  compiler, exporting exactly the mq_* API
#                                  (capi/mqtwin.map, capi/mqtwin.exports).
# Not a cargo cdylib: rustc's version script would hide the C-defined
# (variadic) mq_open.
#
# Usage: capi/build-lib.sh [--release]   (CC overrides the C compiler)
#        capi/build-lib.sh --from LIB.a DIR  (no cargo: makes DIR/libmqtwin.*
#                                             from that staticlib; what
#                                             capi/tests/c_api.rs uses)
# Prints the directory holding the libraries on its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"
if [ "${1:-}" = --from ]; then
  archive=${2:?--from needs the static library}
  dir=${3:?--from needs an output directory}
else
  profile=debug
  cargo_args=()
  if [ "${1:-}" = --release ]; then
    profile=release
    cargo_args=(--release)
  fi
  cargo build -q -p mqtwin-capi ${cargo_args[@]+"${cargo_args[@]}"}
  dir="${CARGO_TARGET_DIR:-$root/target}/$profile"
  archive="$dir/libmqtwin_capi.a"
fi
cc=${CC:-cc}
cp "$archive" "$dir/libmqtwin.a.tmp$$"
mv "$dir/libmqtwin.a.tmp$$" "$dir/libmqtwin.a"
case "$(uname -s)" in
  Darwin)
    "$cc" -dynamiclib -o "$dir/libmqtwin.dylib.tmp$$" -Wl,-all_load "$archive" \
      -Wl,-exported_symbols_list,"$here/mqtwin.exports" -install_name @rpath/libmqtwin.dylib \
      -lpthread
    mv "$dir/libmqtwin.dylib.tmp$$" "$dir/libmqtwin.dylib"
    ;;
  *)
    "$cc" -shared -o "$dir/libmqtwin.so.tmp$$" -Wl,--whole-archive "$archive" \
      -Wl,--no-whole-archive -Wl,--version-script="$here/mqtwin.map" -Wl,-soname,libmqtwin.so \
      -lpthread -ldl -lm
    mv "$dir/libmqtwin.so.tmp$$" "$dir/libmqtwin.so"
    ;;
esac
echo "$dir"
