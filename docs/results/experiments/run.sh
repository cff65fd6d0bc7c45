#!/bin/bash
# base registry with the initial version only, then one demo per (label, arms, salt) from a copy of it
set -u
cd "$(git rev-parse --show-toplevel)"

PY="nice -n 19 .venv/bin/python -m streamrec.cli"
OUT=docs/results/experiments; mkdir -p $OUT
[ -d /tmp/exp-base/registry ] || { rm -rf /tmp/exp-base;
$PY demo --no-live --no-trainer --max-events 1 --data-dir /tmp/exp-base > $OUT/base.log 2>&1; }
V=$($PY models list --data-dir /tmp/exp-base | awk '{print $1}' | head -1)
echo "initial version $V" | tee $OUT/version.txt
run() {  # label arms salt
  rm -rf /tmp/exp-run; cp -a /tmp/exp-base /tmp/exp-run
  STREAMREC_EXPERIMENT__ARMS="$2" STREAMREC_EXPERIMENT__SALT="$3" STREAMREC_EXPERIMENT__CONTROL=frozen \
    timeout 900 $PY demo --no-live --data-dir /tmp/exp-run --summary $OUT/$1.json > $OUT/$1.log 2>&1
  echo "$1 exit $?"
}
AB="online:50:latest,frozen:50:version=$V"
AA="online:50:version=$V,frozen:50:version=$V"
run ab-salt-streamrec "$AB" streamrec
run ab-salt-s2 "$AB" s2
run ab-salt-s3 "$AB" s3
run aa-salt-streamrec "$AA" streamrec
run aa-salt-s2 "$AA" s2
echo done
