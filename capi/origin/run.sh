#!/usr/bin/env bash
# The origin for real: the Go library this crate descends from
# (../shared/peers/posix_mq, unmodified) builds its sender and receiver
# examples, and they exchange their 10 messages
#
#   a. on the kernel (glibc's mq_*, -lrt as the library asks);
#   b. over `mqtwin serve` through libmqtwin, by LD_PRELOAD under the
#      binaries of (a), and by linking (-lmqtwin ahead of the -lrt);
#   c. over `mqtwin serve --virtual-time --faults interrupt=1` by
#      LD_PRELOAD: the receiver's first blocking receive is interrupted
#      (EINTR, as a signal would), which the library reports and exits on;
#      the server's trace shows the injected fault.
#
# Every process is started and stopped here, bounded in time; the server
# listens on a socket in a private temporary directory.
#
# Exit status: 0 every check held; 1 a check failed; 99 it cannot run here
# (no Go toolchain and no way to install it, no origin library), with a
# last line "run.sh: cannot run: WHY" (.ci/run's origin layer).
#
# Knobs: POSIX_MQ_DIR=DIR (default ../shared/peers/posix_mq beside the
# repository), MQTWIN_ORIGIN_INSTALL=0 (never apt-get install golang-go).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
POSIX_MQ_DIR=${POSIX_MQ_DIR:-$ROOT/../shared/peers/posix_mq}
QUEUE=/posix_mq_example # the examples' queue name (hard-coded there)

say() { echo "run.sh: $*"; }
cannot() {
  say "cannot run: $*"
  exit 99
}
FAILED=0
ok() { say "ok: $*"; }
not_ok() {
  say "NOT OK: $*"
  FAILED=1
}
bounded() {
  local secs=$1
  shift
  timeout --kill-after=5 "$secs" "$@"
}

# ----------------------------------------------------------------- tools --
[ -d "$POSIX_MQ_DIR/example/exec" ] || cannot "no origin Go library at $POSIX_MQ_DIR (set POSIX_MQ_DIR)"
command -v cc >/dev/null || cannot "no C compiler (cc)"
if ! command -v go >/dev/null; then
  [ "${MQTWIN_ORIGIN_INSTALL:-1}" = 0 ] && cannot "no Go toolchain (MQTWIN_ORIGIN_INSTALL=0: not installing)"
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null ||
    cannot "no Go toolchain, and not root with apt-get: apt-get install golang-go"
  export DEBIAN_FRONTEND=noninteractive
  bounded 600 apt-get install -y -qq --no-install-recommends golang-go ||
    { bounded 300 apt-get update -qq && bounded 600 apt-get install -y -qq --no-install-recommends golang-go; } ||
    cannot "apt-get install golang-go failed"
fi
say "$(go version)"

WORK=$(mktemp -d /tmp/mqtwin-origin.XXXXXX)
SERVER_PID=
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null
  jobs -p | xargs -r kill 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

# ---------------------------------------------------------------- builds --
say "building libmqtwin and the mqtwin CLI"
bash "$ROOT/capi/build-lib.sh" >/dev/null || { not_ok "capi/build-lib.sh"; exit 1; }
LIB=$ROOT/target/debug
(cd "$ROOT" && bounded 900 cargo build -q -p mqtwin-cli --bin mqtwin) || { not_ok "cargo build mqtwin"; exit 1; }
MQTWIN=$ROOT/target/debug/mqtwin

say "building the origin's sender and receiver (cgo), with -lrt and with -lmqtwin"
cp -R "$POSIX_MQ_DIR/." "$WORK/src/" 2>/dev/null || { mkdir -p "$WORK/src" && cp -R "$POSIX_MQ_DIR/." "$WORK/src/"; }
chmod -R u+w "$WORK/src"
gobuild() { # OUT-DIR [extra env...]
  local out=$1 prog
  shift
  mkdir -p "$out"
  for prog in sender receiver; do
    (cd "$WORK/src" && env GOFLAGS=-mod=mod GOPROXY=off CGO_ENABLED=1 GOPATH=$WORK/gopath \
      GOCACHE=$WORK/gocache "$@" timeout --kill-after=5 600 go build -trimpath -o "$out/$prog" "./example/exec/$prog") ||
      return 1
  done
}
gobuild "$WORK/glibc" || { not_ok "go build (glibc, -lrt)"; exit 1; }
gobuild "$WORK/linked" CGO_CFLAGS="-I$ROOT/capi/include" \
  CGO_LDFLAGS="-L$LIB -lmqtwin -Wl,-rpath,$LIB" ||
  { not_ok "go build (-lmqtwin)"; exit 1; }
if readelf -d "$WORK/linked/receiver" | grep -q 'NEEDED.*libmqtwin'; then
  ok "the linked build needs libmqtwin.so"
else
  not_ok "the linked build does not need libmqtwin.so"
fi

# ----------------------------------------------------------------- a run --
# exchange NAME DIR [env...]: the sender creates the queue; the receiver
# starts after its first send and must print the 10 messages in order.
exchange() {
  local name=$1 dir=$2
  shift 2
  local out=$WORK/$name
  mkdir -p "$out"
  env "$@" timeout --kill-after=5 60 "$dir/sender" >"$out/sender.out" 2>"$out/sender.err" &
  local sender=$!
  local i
  for i in $(seq 1 100); do
    grep -q "Sent a new message" "$out/sender.out" 2>/dev/null && break
    sleep 0.1
  done
  env "$@" timeout --kill-after=5 60 "$dir/receiver" >"$out/receiver.out" 2>"$out/receiver.err"
  local rrc=$?
  wait "$sender"
  local src=$?
  local want got
  want=$(printf 'Start receiving messages\n'; for i in $(seq 1 10); do printf 'Hello, World : %d\n\n' "$i"; done)
  got=$(cat "$out/receiver.out")
  if [ $src = 0 ] && [ $rrc = 0 ] && [ "$got" = "$want" ] &&
    [ "$(grep -c 'Sent a new message' "$out/sender.out")" = 10 ]; then
    ok "$name: 10 messages sent and received in order"
  else
    not_ok "$name: sender exit $src, receiver exit $rrc"
    sed 's/^/    sender: /' "$out/sender.out" "$out/sender.err"
    sed 's/^/    receiver: /' "$out/receiver.out" "$out/receiver.err"
  fi
}

serve() { # SOCKET [serve options...]
  local sock=$1
  shift
  "$MQTWIN" serve --socket "$sock" "$@" >"$sock.log" 2>&1 &
  SERVER_PID=$!
  local i
  for i in $(seq 1 100); do
    [ -S "$sock" ] && return 0
    sleep 0.05
  done
  not_ok "mqtwin serve did not start"
  cat "$sock.log"
  return 1
}
stop_server() { # SOCKET
  bounded 20 "$MQTWIN" ctl --socket "$1" stop >/dev/null 2>&1
  wait "$SERVER_PID" 2>/dev/null
  SERVER_PID=
}

# a. the kernel (a leftover queue from an interrupted run would change nothing,
# but do not leave one behind either).
if [ -e /dev/mqueue ] || grep -q mqueue /proc/filesystems 2>/dev/null; then
  exchange kernel "$WORK/glibc"
  "$MQTWIN" rm "$QUEUE" >/dev/null 2>&1
else
  not_ok "no POSIX message queues on this kernel"
fi

# b. over the server, by LD_PRELOAD and by linking.
SOCK=$WORK/twin.sock
serve "$SOCK" --trace "$WORK/trace-b.txt" && {
  exchange "server, LD_PRELOAD" "$WORK/glibc" LD_PRELOAD="$LIB/libmqtwin.so" MQTWIN_SOCKET="$SOCK"
  exchange "server, linked" "$WORK/linked" MQTWIN_SOCKET="$SOCK"
  stop_server "$SOCK"
  # Both runs went through the server, not the kernel: 10 sends each.
  n=$(grep -c "send(\"$QUEUE\"" "$WORK/trace-b.txt" 2>/dev/null)
  if [ "${n:-0}" = 20 ]; then
    ok "the server's trace records both runs' 20 sends"
  else
    not_ok "the server's trace has ${n:-no} sends to $QUEUE, not 20"
  fi
}

# c. the receiver under virtual time and a fault plan: its first blocking
# receive is interrupted.
SOCK=$WORK/faults.sock
serve "$SOCK" --virtual-time --faults seed=7,interrupt=1 --trace "$WORK/trace-c.txt" && {
  out=$WORK/faults
  mkdir -p "$out"
  env LD_PRELOAD="$LIB/libmqtwin.so" MQTWIN_SOCKET="$SOCK" timeout --kill-after=5 60 "$WORK/glibc/sender" >"$out/sender.out" 2>&1 &
  sender=$!
  for i in $(seq 1 100); do
    grep -q "Sent a new message" "$out/sender.out" 2>/dev/null && break
    sleep 0.1
  done
  # The first message is queued; the receive after it must wait for the
  # sender's next (a second later), and that wait is interrupted.
  env LD_PRELOAD="$LIB/libmqtwin.so" MQTWIN_SOCKET="$SOCK" timeout --kill-after=5 30 "$WORK/glibc/receiver" \
    >"$out/receiver.out" 2>"$out/receiver.err"
  rrc=$?
  kill "$sender" 2>/dev/null
  wait "$sender" 2>/dev/null
  stop_server "$SOCK"
  if [ $rrc != 0 ] && grep -q "interrupted system call" "$out/receiver.err" &&
    grep -q "Hello, World : 1" "$out/receiver.out" && grep -qi "interrupt" "$WORK/trace-c.txt"; then
    ok "faults: the receiver's blocked receive was interrupted (EINTR), it said so and exited $rrc; the trace shows the fault"
  else
    not_ok "faults: receiver exit $rrc"
    sed 's/^/    receiver: /' "$out/receiver.out" "$out/receiver.err"
    tail -n 20 "$WORK/trace-c.txt" 2>/dev/null | sed 's/^/    trace: /'
  fi
}

[ $FAILED = 0 ] && say "all checks passed" || say "some checks FAILED"
exit $FAILED
