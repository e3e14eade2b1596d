#!/bin/bash
# Runs one command of a study chain: one at a time across every chain (a shared lock: two study models
# at once reach 20-22 GB, more than this 24 GB machine has beside anything else), tried again up to
# twice if it is killed (the OOM killer, a signal): run.py resumes from its last checkpoint.
#   bash results/chains/one_at_a_time.sh python run.py --config=... --workdir=...
# Lock: $CHAIN_LOCK (default /tmp/mtlws_chain.lock).
lock=${CHAIN_LOCK:-/tmp/mtlws_chain.lock}
for try in 1 2 3; do
  flock "$lock" "$@" && exit 0
  rc=$?
  if [ $rc -lt 128 ]; then exit $rc; fi      # an error of the run itself: no retry
  [ $try -lt 3 ] || break
  echo "chain: '$*' was killed (exit $rc); try $((try + 1)) of 3 resumes it" >&2
  sleep "${CHAIN_RETRY_SLEEP:-30}"
done
exit $rc
