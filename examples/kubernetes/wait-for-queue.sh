#!/bin/sh
# wait-for-queue NAME PROGRAM [ARG...]
#
# Waits until the POSIX message queue NAME (e.g. /posix_mq_example) exists in
# this container's IPC namespace, then replaces itself with PROGRAM. For a
# program that opens a queue without O_CREAT, in a pod whose containers start
# in no particular order. It looks in /dev/mqueue, which container runtimes
# mount in every container; without it, it says so and runs PROGRAM at once.
# Gives up waiting after WAIT_FOR_QUEUE_SECS seconds (default 30) and runs
# PROGRAM anyway, which then reports the missing queue itself. Prints
# nothing unless something is wrong (and then only to stderr), so PROGRAM's
# output is all that the container's log shows.
if [ $# -lt 2 ]; then
  echo "usage: wait-for-queue NAME PROGRAM [ARG...]" >&2
  exit 2
fi
name=${1#/}
shift
secs=${WAIT_FOR_QUEUE_SECS:-30}
tries=$((secs * 10))
while [ ! -e "/dev/mqueue/$name" ]; do
  if [ ! -d /dev/mqueue ]; then
    echo "wait-for-queue: /dev/mqueue is not mounted; not waiting for /$name" >&2
    break
  fi
  if [ "$tries" -le 0 ]; then
    echo "wait-for-queue: /$name did not appear within ${secs}s" >&2
    break
  fi
  tries=$((tries - 1))
  sleep 0.1
done
exec "$@"
