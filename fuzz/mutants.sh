#!/usr/bin/env bash
# Plants known bugs, one at a time, into the protocol service
# (examples/protocol/mod.rs) in a scratch worktree of HEAD, and checks that
# the protocol_kit model catches each: the generated inputs of
# tests/protocol_kit.rs and the kept inputs of tests/regressions/protocol_kit.
# Prints one line per bug: caught (and by what) or MISSED. Exit 1 if any is
# missed. About a minute after the first build. Usage: bash fuzz/mutants.sh
set -u
root=$(git rev-parse --show-toplevel)
scratch=$(mktemp -d /tmp/mqtwin-mutants.XXXXXX)
git -C "$root" worktree add -q --detach "$scratch" HEAD || exit 2
trap 'git -C "$root" worktree remove --force "$scratch"' EXIT
cd "$scratch" || exit 2
export CARGO_TARGET_DIR="$root/target/mutants"
missed=0
mutant() { # name, text to replace, replacement
  git checkout -q -- examples/protocol/mod.rs
  python3 - "$2" "$3" <<'PY' || { echo "$1: the text to mutate is gone"; missed=1; return; }
import sys
p = 'examples/protocol/mod.rs'; s = open(p).read(); old, new = sys.argv[1], sys.argv[2]
if old not in s: sys.exit(1)
open(p, 'w').write(s.replace(old, new, 1))
PY
  local gen kept
  gen=$(timeout 600 cargo test -q --features fuzzkit --test protocol_kit every_configuration 2>&1 | tr -d "\0" |
    grep -aE "^(client [0-9]+: |final check: |a participant panicked: |deadlock|did not stop)" | head -1 | cut -c1-110)
  kept=$(timeout 600 cargo test -q --features arbitrary,fuzzkit --test fuzz_regressions protocol_kit 2>&1 |
    grep -ao "protocol_kit/[a-z-]*" | sort -u | sed 's|protocol_kit/||' | tr '\n' ' ')
  if [ -n "$gen" ] && [ -n "$kept" ]; then
    echo "$1: caught: ${gen} | kept inputs failing: ${kept}"
  else
    echo "$1: MISSED (generated: ${gen:-none}; kept: ${kept:-none})"; missed=1
  fi
}
mutant expiry-ignored 'Some((v, exp)) if exp.is_none_or(|t| now < t) => Some(v.clone()),' \
  'Some((v, _exp)) => Some(v.clone()),'
mutant fixed-reply-priority 'queue.send_deadline(frame, priority, deadline)' \
  'queue.send_deadline(frame, NORMAL_PRIORITY, deadline)'
mutant reply-without-deadline 'queue.send_deadline(frame, priority, deadline)' \
  'queue.send_deadline(frame, priority, None)'
mutant decoder-accepts-trailing-bytes 'if frame.len() != REQUEST_HEADER_LEN + key_len + value_len {' \
  'if frame.len() < REQUEST_HEADER_LEN + key_len + value_len {'
mutant failed-connect-leaves-its-queue 'let _ = ns.unlink(&name);' 'let _ = &name;'
mutant no-retry-when-replying '            self.config.reply_queue(client),
            self.config.max_retries,' '            self.config.reply_queue(client),
            0,'
mutant bad-request-unanswered '(Some((*client, *id)), reply)' \
  'return Served { to: None, request, priority: r.priority, delivery: Delivery::Unaddressable }'
exit $missed
