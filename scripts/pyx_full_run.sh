#!/usr/bin/env bash
# The teacher-free PyX / PyX-R throughput run: the standard library plus the program generator, all cores.
# Usage: scripts/pyx_full_run.sh OUT_DIR [GENERATED]   (resumable: rerun the same command after a crash)
set -euo pipefail
out=${1:?usage: scripts/pyx_full_run.sh OUT_DIR [GENERATED]}
generated=${2:-2000}
stdlib=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
mkdir -p "$out"
nproc
/usr/bin/time -f "pyx wall %e s" semcoder data pyx --source "$stdlib" --generated "$generated" --out "$out/pyx"
/usr/bin/time -f "pyxr wall %e s" semcoder data pyxr --pyx "$out/pyx" --out "$out/pyx_r"
