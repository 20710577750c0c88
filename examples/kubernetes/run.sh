#!/usr/bin/env bash
# Runs the Kubernetes pod examples for real, with podman and no registry:
#
#   1. installs podman, runc, catatonit and Go from Debian's packages when
#      they are missing (root only);
#   2. builds static release binaries of the hello sender and receiver and
#      of the `mqtwin` CLI (target/static), and of the origin Go library's
#      sender and receiver examples (../shared/peers/posix_mq);
#   3. builds the images FROM scratch (Containerfile, Containerfile.posix_mq_*);
#   4. plays examples/kubernetes/pod.yaml unchanged, a neighbour pod that must
#      not see its queue, the origin's pod-posixmq.yaml as written, and
#      pod-mixed.yaml (Go <-> Rust on one kernel queue), all with
#      `podman kube play --network none`;
#   5. checks every container's exit status and log, removes the pods
#      (`podman kube down`) and checks that nothing is left.
#
# Exit status: 0 when every check holds; 1 when a check failed; 99 when it
# cannot run here (no podman and no way to install it, no origin library...),
# with a last line "run.sh: cannot run: WHY". .ci/run's pod layer turns 99
# into "cannot run", which fails the run under CI=true.
#
# It leaves the user's own podman setup alone: its podman runs with
# CONTAINERS_CONF, CONTAINERS_STORAGE_CONF and CONTAINERS_REGISTRIES_CONF
# pointing at files it writes under $MQTWIN_KUBE_STATE, and keeps its
# images and containers in a storage of its own there. The images stay
# (cached for the next run); the pods are removed, also on failure.
#
# Knobs:
#   MQTWIN_KUBE_STATE=DIR   config, storage, build contexts (default
#                           /var/tmp/mqtwin-kube-$UID)
#   MQTWIN_KUBE_INSTALL=0   never run apt-get (missing tools: cannot run)
#   POSIX_MQ_DIR=DIR        the origin Go library (default
#                           ../shared/peers/posix_mq beside the repository)
#   BUSYBOX=FILE            a static busybox to use instead of Debian's
#                           busybox-static (fetched with `apt-get download`)
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/examples/kubernetes
STATE=${MQTWIN_KUBE_STATE:-/var/tmp/mqtwin-kube-$(id -u)}
POSIX_MQ_DIR=${POSIX_MQ_DIR:-$ROOT/../shared/peers/posix_mq}
POSIX_MQ_DIR=$(cd "$POSIX_MQ_DIR" 2>/dev/null && pwd || echo "$POSIX_MQ_DIR")
CANNOT_RC=99
PODS=(mqtwin-hello mqtwin-neighbour posixmq-pod posixmq-go-to-rust posixmq-rust-to-go)
PASSED=0
FAILED=0
T_START=$(date +%s)

say() { printf '[run.sh] %s\n' "$*"; }
cannot() {
  printf '\n!!!!! run.sh: CANNOT RUN: %s !!!!!\n' "$*" >&2
  printf 'run.sh: cannot run: %s\n' "$*"
  exit $CANNOT_RC
}
ok() {
  PASSED=$((PASSED + 1))
  printf 'ok   - %s\n' "$*"
}
not_ok() {
  FAILED=$((FAILED + 1))
  printf 'FAIL - %s\n' "$*"
}
# check DESCRIPTION COMMAND...: one check, passed when COMMAND succeeds.
check() {
  local what=$1
  shift
  if "$@"; then ok "$what"; else not_ok "$what"; fi
}
# bounded COMMAND...: every podman (and build) step has a time limit.
bounded() {
  local secs=$1
  shift
  timeout --kill-after=10 "$secs" "$@"
}
elapsed() { echo $(($(date +%s) - $1)); }

# ------------------------------------------------------------ 1. tools --

T0=$(date +%s)
missing=()
command -v podman >/dev/null || missing+=(podman)
command -v runc >/dev/null || missing+=(runc)
# podman builds its own pause (infra) image around catatonit.
[ -x /usr/libexec/podman/catatonit ] || command -v catatonit >/dev/null || missing+=(catatonit)
command -v go >/dev/null || missing+=(golang-go)
command -v cargo >/dev/null || cannot "cargo is missing: the hello binaries cannot be built"
command -v gcc >/dev/null || missing+=(gcc)
# Static linking (Rust +crt-static, Go's external linker with -static)
# needs glibc's static archives.
case $(gcc -print-file-name=libc.a 2>/dev/null) in /*) ;; *) missing+=(libc6-dev) ;; esac

if [ ${#missing[@]} -gt 0 ]; then
  say "missing: ${missing[*]}"
  [ "${MQTWIN_KUBE_INSTALL:-1}" = 0 ] && cannot "missing ${missing[*]} (MQTWIN_KUBE_INSTALL=0: not installing)"
  [ "$(id -u)" = 0 ] || cannot "missing ${missing[*]}, and not root: install them (apt-get install ${missing[*]})"
  command -v apt-get >/dev/null || cannot "missing ${missing[*]}, and no apt-get to install them"
  export DEBIAN_FRONTEND=noninteractive
  # runc, not crun: see the caveats in README.md (crun refuses a hybrid
  # cgroup v1/v2 host). Naming runc satisfies podman's "crun | runc".
  install() { bounded 600 apt-get install -y -qq --no-install-recommends "${missing[@]}"; }
  if ! install; then
    say "apt-get install failed; apt-get update, then again"
    bounded 300 apt-get update -qq || cannot "apt-get update failed"
    install || cannot "apt-get install ${missing[*]} failed"
  fi
fi
T_INSTALL=$(elapsed "$T0")
say "tools ready in ${T_INSTALL}s: $(podman --version), $(runc --version 2>/dev/null | head -1), $(go version)"
[ -d "$POSIX_MQ_DIR/example/exec" ] || cannot "no origin Go library at $POSIX_MQ_DIR (set POSIX_MQ_DIR)"

# ---------------------------------------------------- podman's config --

mkdir -p "$STATE" || cannot "cannot create $STATE"
STATE=$(cd "$STATE" && pwd)
if [ "$(id -u)" = 0 ]; then RUNDIR=/run/mqtwin-kube; else RUNDIR=${XDG_RUNTIME_DIR:-/tmp}/mqtwin-kube-$(id -u); fi
mkdir -p "$RUNDIR" "$STATE/storage" || cannot "cannot create $RUNDIR"

# One run at a time: the pods have fixed names.
if command -v flock >/dev/null; then
  exec 9>"$STATE/lock"
  flock -w 600 9 || cannot "another run.sh holds $STATE/lock"
fi

# Runtime state from before a reboot (when /run is not a tmpfs) would make
# podman believe dead containers still run: start that part afresh.
boot=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null || true)
if [ -n "$boot" ] && [ "$(cat "$RUNDIR/boot_id" 2>/dev/null)" != "$boot" ]; then
  rm -rf "$RUNDIR" && mkdir -p "$RUNDIR" && echo "$boot" >"$RUNDIR/boot_id"
fi

# The limits podman asks runc to set in each container must not exceed the
# hard limits podman itself runs with, or a host where root lacks
# CAP_SYS_RESOURCE refuses them ("error setting rlimit type 6"). podman's
# defaults (1048576) do exceed them there; and podman 4.3 lowers its own
# RLIMIT_NPROC to 32768 when it starts (seen with strace), hence that cap.
limit() { # limit HARD CAP
  case $1 in unlimited | '') echo "$2" ;; *) if [ "$1" -lt "$2" ]; then echo "$1"; else echo "$2"; fi ;; esac
}
NOFILE=$(limit "$(ulimit -Hn)" 1048576)
NPROC=$(limit "$(ulimit -Hu)" 32768)
PID_MAX=$(cat /proc/sys/kernel/pid_max 2>/dev/null || echo 32768)
NPROC=$(limit "$NPROC" "$PID_MAX")
{
  echo "# Written by examples/kubernetes/run.sh; used only through CONTAINERS_CONF."
  echo "[containers]"
  echo "default_ulimits = [\"nofile=$NOFILE:$NOFILE\", \"nproc=$NPROC:$NPROC\"]"
  echo "log_driver = \"k8s-file\""
  echo "[engine]"
  # runc: crun refuses hybrid cgroup v1/v2 hosts (README.md, caveats).
  if command -v runc >/dev/null; then echo "runtime = \"runc\""; fi
  echo "tmp_dir = \"$RUNDIR/libpod\""
  # Without systemd (a container or sandbox as the host), neither the
  # systemd cgroup manager nor the journal is there.
  if [ ! -d /run/systemd/system ]; then
    echo "cgroup_manager = \"cgroupfs\""
    echo "events_logger = \"file\""
  fi
} >"$STATE/containers.conf"
cat >"$STATE/storage.conf" <<EOF
# Written by examples/kubernetes/run.sh; used only through CONTAINERS_STORAGE_CONF.
[storage]
driver = "${MQTWIN_KUBE_STORAGE_DRIVER:-overlay}"
graphroot = "$STATE/storage"
runroot = "$RUNDIR/storage"
EOF
# No registry to search: an image that is not local is an error, not a pull.
cat >"$STATE/registries.conf" <<EOF
# Written by examples/kubernetes/run.sh; used only through CONTAINERS_REGISTRIES_CONF.
unqualified-search-registries = []
short-name-mode = "enforcing"
EOF
export CONTAINERS_CONF=$STATE/containers.conf
export CONTAINERS_STORAGE_CONF=$STATE/storage.conf
export CONTAINERS_REGISTRIES_CONF=$STATE/registries.conf
say "podman config: CONTAINERS_CONF=$CONTAINERS_CONF CONTAINERS_STORAGE_CONF=$CONTAINERS_STORAGE_CONF CONTAINERS_REGISTRIES_CONF=$CONTAINERS_REGISTRIES_CONF"
say "(export the same three to look at the pods with podman while this runs)"

remove_pods() {
  local pod
  for pod in "${PODS[@]}"; do
    if bounded 30 podman pod exists "$pod" 2>/dev/null; then
      bounded 60 podman pod rm -f -t 0 "$pod" >/dev/null 2>&1 || say "could not remove pod $pod"
    fi
  done
}
finish() {
  local rc=$?
  trap - EXIT
  remove_pods
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# Pods left by a run that was killed (SIGKILL, power) before its cleanup.
remove_pods

# --------------------------------------------------------- 2. binaries --

T0=$(date +%s)
HOST=$(rustc -vV | sed -n 's/^host: //p')
STATIC_TARGET=${CARGO_TARGET_DIR_STATIC:-$ROOT/target/static}
say "static Rust builds ($HOST, +crt-static) in $STATIC_TARGET"
# Static glibc is fine here: none of these programs resolves users or hosts
# (no NSS). A target directory of its own, so the usual build is untouched.
rust_build() {
  (cd "$ROOT" && RUSTFLAGS='-C target-feature=+crt-static' CARGO_TARGET_DIR=$STATIC_TARGET \
    bounded 1200 cargo build --release --locked --quiet --target "$HOST" "$@")
}
rust_build --example sender --example receiver || { not_ok "static build of the hello examples"; exit 1; }
rust_build -p mqtwin-cli --bin mqtwin || { not_ok "static build of the mqtwin CLI"; exit 1; }
REL=$STATIC_TARGET/$HOST/release

say "static Go builds of the origin's examples from $POSIX_MQ_DIR"
GO=$STATE/go
rm -rf "$GO/src" && mkdir -p "$GO/src" "$GO/bin" && cp -R "$POSIX_MQ_DIR/." "$GO/src/" && chmod -R u+w "$GO/src"
for prog in sender receiver; do
  # cgo (the library links -lrt); the external linker links it -static.
  (cd "$GO/src" && GOFLAGS=-mod=mod GOPROXY=off CGO_ENABLED=1 GOPATH=$GO/path GOCACHE=$GO/cache \
    bounded 600 go build -trimpath -o "$GO/bin/$prog" -ldflags '-linkmode external -extldflags -static' \
    "./example/exec/$prog") || { not_ok "static Go build of example/exec/$prog"; exit 1; }
done

# busybox: sh, seq and sleep for pod.yaml's debug loop and wait-for-queue.
if [ -n "${BUSYBOX:-}" ]; then
  cp "$BUSYBOX" "$STATE/busybox"
elif [ ! -x "$STATE/busybox" ]; then
  say "fetching Debian's busybox-static (apt-get download; not installed)"
  rm -rf "$STATE/dl" && mkdir -p "$STATE/dl"
  # As root, apt would hand the download to its _apt user, who may not
  # write here: keep it root's (it only fetches a file, checked by apt).
  sandbox=()
  [ "$(id -u)" = 0 ] && sandbox=(-o APT::Sandbox::User=root)
  fetched() { (cd "$STATE/dl" && bounded 300 apt-get download -q "${sandbox[@]}" busybox-static >/dev/null); }
  if ! fetched; then
    [ "$(id -u)" = 0 ] && bounded 300 apt-get update -qq
    fetched || cannot "could not fetch busybox-static (set BUSYBOX=/path/to/static/busybox)"
  fi
  dpkg-deb -x "$STATE"/dl/busybox-static_*.deb "$STATE/dl/x" || cannot "could not unpack busybox-static"
  cp "$STATE/dl/x/bin/busybox" "$STATE/busybox"
fi
T_BINARIES=$(elapsed "$T0")
say "binaries built in ${T_BINARIES}s"

# ----------------------------------------------------------- 3. images --

T0=$(date +%s)
CTX=$STATE/ctx
rm -rf "$CTX"
stage_busybox() { # stage_busybox DIR APPLET...
  local dir=$1 applet
  shift
  mkdir -p "$dir/bin" && cp "$STATE/busybox" "$dir/bin/busybox"
  for applet in "$@"; do ln -s busybox "$dir/bin/$applet"; done
}
mkdir -p "$CTX/hello" "$CTX/posix_mq_sender" "$CTX/posix_mq_receiver"
cp "$REL/examples/sender" "$REL/examples/receiver" "$REL/mqtwin" "$CTX/hello/"
cp "$HERE/wait-for-queue.sh" "$CTX/hello/wait-for-queue"
stage_busybox "$CTX/hello" sh seq sleep
cp "$GO/bin/sender" "$CTX/posix_mq_sender/posix-mq-example"
cp "$GO/bin/receiver" "$CTX/posix_mq_receiver/posix-mq-example"
cp "$HERE/wait-for-queue.sh" "$CTX/posix_mq_receiver/wait-for-queue"
stage_busybox "$CTX/posix_mq_receiver" sh sleep

image() { # image TAG CONTAINERFILE CONTEXT
  bounded 300 podman build --pull=never --quiet -f "$2" -t "$1" "$3" >/dev/null
}
check "image mqtwin-hello:latest built FROM scratch (Containerfile)" \
  image mqtwin-hello:latest "$HERE/Containerfile" "$CTX/hello"
check "image posix_mq_sender built FROM scratch (Containerfile.posix_mq_sender)" \
  image posix_mq_sender:latest "$HERE/Containerfile.posix_mq_sender" "$CTX/posix_mq_sender"
check "image posix_mq_receiver built FROM scratch (Containerfile.posix_mq_receiver)" \
  image posix_mq_receiver:latest "$HERE/Containerfile.posix_mq_receiver" "$CTX/posix_mq_receiver"
[ $FAILED = 0 ] || { echo "checks: $PASSED passed, $FAILED failed"; exit 1; }
T_IMAGES=$(elapsed "$T0")
say "images built in ${T_IMAGES}s"

# ------------------------------------------------------------- 4. pods --

T0=$(date +%s)
# --network none: the pods need no network, and then podman sets none up.
play() { bounded 120 podman kube play --network none "$1" >/dev/null; }
down() { bounded 120 podman kube down "$1" >/dev/null; }
logs() { bounded 30 podman logs "$1" 2>&1; }
exit_code() { bounded 30 podman inspect --format '{{.State.ExitCode}}' "$1" 2>/dev/null; }
# The text of a Rust hello log without its "[role +1.23s] " prefixes.
untimed() { sed -E 's/^\[[a-z]+ +\+[0-9]+\.[0-9]{2}s\] //'; }
# same WHAT EXPECTED ACTUAL: exact comparison, with a diff when they differ.
same() {
  if [ "$2" == "$3" ]; then
    ok "$1"
  else
    not_ok "$1"
    diff <(printf '%s\n' "$2") <(printf '%s\n' "$3") | sed 's/^/       /'
  fi
}
exited_zero() { # exited_zero CONTAINER...
  local c code all=0
  for c in "$@"; do
    code=$(exit_code "$c")
    if [ "$code" != 0 ]; then
      say "$c exited with status ${code:-?}; its log:"
      logs "$c" | tail -20 | sed 's/^/       /'
      all=1
    fi
  done
  return $all
}
queue_in() { bounded 30 podman exec "$1" mqtwin stat "$2" >/dev/null 2>&1; }
hello_lines() { # hello_lines SUFFIX: "Hello, World : N" SUFFIX for N = 1..10
  local n
  for n in $(seq 10); do printf '%s\n' "received \"Hello, World : $n$1\" (priority 0)"; done
}

say "pod.yaml (unchanged): receiver, sender and debug in one pod"
check "podman kube play examples/kubernetes/pod.yaml" play "$HERE/pod.yaml"

# Negative check, bracketed by positive ones: the queue exists in the pod
# (seen from its debug container) before and after a second pod looks for it.
seen=0
for _ in $(seq 100); do
  if queue_in mqtwin-hello-debug /mqtwin-hello; then seen=1; break; fi
  sleep 0.1
done
check "the pod's debug container sees /mqtwin-hello (same IPC namespace)" [ $seen = 1 ]
check "podman kube play examples/kubernetes/pod-neighbour.yaml" play "$HERE/pod-neighbour.yaml"
bounded 60 podman wait mqtwin-neighbour-look >/dev/null
neighbour=$(logs mqtwin-neighbour-look)
neighbour_blind() {
  grep -q 'no message queue named "/mqtwin-hello"' <<<"$neighbour" &&
    grep -q '^stat exit status [1-9]' <<<"$neighbour" &&
    ! grep -q '^/mqtwin-hello ' <<<"$neighbour"
}
if neighbour_blind; then
  ok "a second pod does not see /mqtwin-hello (an IPC namespace of its own)"
else
  not_ok "a second pod does not see /mqtwin-hello (an IPC namespace of its own)"
  sed 's/^/       /' <<<"$neighbour"
fi
host_blind() {
  local out
  out=$("$REL/mqtwin" stat /mqtwin-hello 2>&1)
  grep -q 'no message queue named "/mqtwin-hello"' <<<"$out"
}
check "... nor does the host's IPC namespace" host_blind
check "... while the pod still sees it" queue_in mqtwin-hello-debug /mqtwin-hello

# The origin's pod and the mixed pods meanwhile, in namespaces of their own,
# all three with a queue named /posix_mq_example.
say "the origin's pod-posixmq.yaml (as written) and pod-mixed.yaml (Go <-> Rust)"
check "podman kube play $POSIX_MQ_DIR/example/kubernetes/pod-posixmq.yaml" \
  play "$POSIX_MQ_DIR/example/kubernetes/pod-posixmq.yaml"
check "podman kube play examples/kubernetes/pod-mixed.yaml" play "$HERE/pod-mixed.yaml"

HELLO_CTRS=(mqtwin-hello-receiver mqtwin-hello-sender mqtwin-hello-debug)
ORIGIN_CTRS=(posixmq-pod-posixmq-sender posixmq-pod-posixmq-receiver)
MIXED_CTRS=(posixmq-go-to-rust-go-sender posixmq-go-to-rust-rust-receiver
  posixmq-rust-to-go-rust-sender posixmq-rust-to-go-go-receiver)
# pod.yaml's debug loop takes 30 s; the receivers give up after 60-120 s.
bounded 150 podman wait "${HELLO_CTRS[@]}" "${ORIGIN_CTRS[@]}" "${MIXED_CTRS[@]}" >/dev/null ||
  say "podman wait failed or timed out"
T_PODS=$(elapsed "$T0")

# ------------------------------------------------------------ 5. checks --

# pod.yaml
check "pod.yaml: receiver, sender and debug exited with status 0" exited_zero "${HELLO_CTRS[@]}"
same "pod.yaml: the receiver's log has the 10 messages in order" \
  "$(
    echo "opened /mqtwin-hello for reading, waiting for 10 messages (giving up after 120.0s)"
    hello_lines ""
    echo "done, 10 messages received; unlinked /mqtwin-hello"
  )" "$(logs mqtwin-hello-receiver | untimed)"
same "pod.yaml: the sender's log has the 10 sends in order" \
  "$(
    echo "opened /mqtwin-hello for writing (capacity 10, messages up to 128 bytes)"
    for n in $(seq 10); do echo "sending  \"Hello, World : $n\" (priority 0)"; done
    echo "done, 10 messages sent"
  )" "$(logs mqtwin-hello-sender | untimed)"
debug=$(logs mqtwin-hello-debug)
# shows_attrs TEXT CAPACITY MAX_MSG_LEN MODE: `mqtwin stat` output in TEXT
# shows these attributes and owner uid/gid 10001.
shows_attrs() {
  grep -Eq "^  capacity +$2 messages" <<<"$1" &&
    grep -Eq "^  max_msg_len +$3 bytes" <<<"$1" &&
    grep -Eq "^  mode +$4\$" <<<"$1" &&
    grep -Eq '^  owner +uid 10001, gid 10001$' <<<"$1"
}
if grep -Eq '^/mqtwin-hello +0600 +10001 +10001 ' <<<"$debug" && shows_attrs "$debug" 10 128 0600; then
  ok "pod.yaml: the debug container's mqtwin ls/stat show the queue (0600, uid 10001, 10 x 128 bytes)"
else
  not_ok "pod.yaml: the debug container's mqtwin ls/stat show the queue (0600, uid 10001, 10 x 128 bytes)"
  head -30 <<<"$debug" | sed 's/^/       /'
fi
check "pod.yaml: the pod has exited" \
  [ "$(bounded 30 podman pod inspect --format '{{.State}}' mqtwin-hello 2>/dev/null)" = Exited ]

# pod-posixmq.yaml: Go's fmt.Println of "Hello, World : N\n" prints an
# empty line after each message.
check "pod-posixmq.yaml: the Go sender and receiver exited with status 0" exited_zero "${ORIGIN_CTRS[@]}"
same "pod-posixmq.yaml: the Go receiver's log has the 10 messages in order" \
  "$(
    echo "Start receiving messages"
    for n in $(seq 10); do printf 'Hello, World : %d\n\n' "$n"; done
  )" "$(logs posixmq-pod-posixmq-receiver)"
same "pod-posixmq.yaml: the Go sender's log has the 10 sends" \
  "$(for _ in $(seq 10); do echo "Sent a new message"; done)" "$(logs posixmq-pod-posixmq-sender)"

# pod-mixed.yaml
check "pod-mixed.yaml: all four containers exited with status 0" exited_zero "${MIXED_CTRS[@]}"
go_to_rust=$(logs posixmq-go-to-rust-rust-receiver)
if shows_attrs "$go_to_rust" 10 8192 0644; then
  ok "Go -> Rust: the Rust side sees the Go sender's queue (kernel defaults 10 x 8192 bytes, 0666 & ~022)"
else
  not_ok "Go -> Rust: the Rust side sees the Go sender's queue (kernel defaults 10 x 8192 bytes, 0666 & ~022)"
  head -12 <<<"$go_to_rust" | sed 's/^/       /'
fi
same "Go -> Rust: the Rust receiver got the Go sender's 10 messages, bytes and all (\"...\\n\")" \
  "$(
    echo "opened /posix_mq_example for reading, waiting for 10 messages (giving up after 60.0s)"
    hello_lines '\n'
    echo "done, 10 messages received; unlinked /posix_mq_example"
  )" "$(grep '^\[receiver' <<<"$go_to_rust" | untimed)"
same "Go -> Rust: the Go sender's log has the 10 sends" \
  "$(for _ in $(seq 10); do echo "Sent a new message"; done)" "$(logs posixmq-go-to-rust-go-sender)"
same "Rust -> Go: the Go receiver got the Rust sender's 10 messages in order" \
  "$(
    echo "Start receiving messages"
    for n in $(seq 10); do echo "Hello, World : $n"; done
  )" "$(logs posixmq-rust-to-go-go-receiver)"
same "Rust -> Go: the Rust sender created the queue (10 x 128 bytes) and sent 10" \
  "$(
    echo "opened /posix_mq_example for writing (capacity 10, messages up to 128 bytes)"
    for n in $(seq 10); do echo "sending  \"Hello, World : $n\" (priority 0)"; done
    echo "done, 10 messages sent"
  )" "$(logs posixmq-rust-to-go-rust-sender | untimed)"

# What the receivers printed, for the record.
for c in mqtwin-hello-receiver posixmq-pod-posixmq-receiver posixmq-go-to-rust-rust-receiver \
  posixmq-rust-to-go-go-receiver; do
  echo "--- podman logs $c"
  logs "$c" | sed 's/^/    /'
done

# ----------------------------------------------------------- 6. cleanup --

for manifest in "$HERE/pod.yaml" "$HERE/pod-neighbour.yaml" \
  "$POSIX_MQ_DIR/example/kubernetes/pod-posixmq.yaml" "$HERE/pod-mixed.yaml"; do
  check "podman kube down ${manifest#"$ROOT"/}" down "$manifest"
done
check "nothing left behind: no pod" [ -z "$(bounded 30 podman pod ps -q)" ]
check "nothing left behind: no container" [ -z "$(bounded 30 podman ps -a -q)" ]

T_TOTAL=$(elapsed "$T_START")
say "timing: tools ${T_INSTALL}s, binaries ${T_BINARIES}s, images ${T_IMAGES}s, pods (play to exit) ${T_PODS}s, total ${T_TOTAL}s"
echo "checks: $PASSED passed, $FAILED failed"
[ $FAILED = 0 ]
