# Source me (do not run me) on the GPU device machine, from the repo root:
#     source scripts/gpu_env.sh
# so that `semcoder eval|repair|model serve|train ...` runs there. That machine has no package registry;
# its image already holds torch, transformers, click, rich, pyyaml, httpx, numpy, requests, ...
# (KINDS.md) and the staged vLLM pack (/tmp/vllm-site, ../shared/gpu/README.md) brings pydantic,
# pydantic-settings, openai, fastapi, uvicorn, starlette. What is still missing travels as wheels in the
# git-ignored .whl/gpu/ (langgraph and its dependencies, docker, datasets, plus our own wheel); name
# ".whl/gpu" in the device call's `carry`. Rebuild that folder here with the commands at the bottom.
#
# Works both before and after `export PYTHONPATH=/tmp/vllm-site:$PYTHONPATH`: the two sites share no package.

_semcoder_gpu_env() {
    local root site wheels stamp want
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd) || return 1
    site=/tmp/semcoder-site
    wheels="$root/.whl/gpu"
    stamp="$site/.installed-from"
    if ! compgen -G "$wheels/*.whl" >/dev/null; then
        echo "gpu_env: no wheels in $wheels: carry \".whl/gpu\" in the device call" >&2
        return 1
    fi
    # The stamp names every wheel with its size, so a second source skips pip, but a changed folder
    # (a new or rebuilt wheel) gets a clean reinstall instead of a mix of old and new files.
    want=$(cd "$wheels" && stat -c "%s %n" ./*.whl)
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        rm -rf "$site"
        # --no-deps/--no-index: nothing can be fetched there, and the folder holds exactly what is missing;
        # resolving against the image would only fail. --no-compile: bytecode is written on first import.
        python3 -m pip install -q --no-index --no-deps --no-compile --disable-pip-version-check \
            --target "$site" "$wheels"/*.whl || { echo "gpu_env: pip install failed" >&2; return 1; }
        printf '%s\n' "$want" > "$stamp"
    fi
    _semcoder_sync_entry_points "$root" "$site" || return 1
    # The checkout first, so its code wins over the wheel's snapshot of it; the wheel is there for its
    # dist-info (entry points, version) and the `semcoder` script. Earlier copies of either path are
    # dropped so that sourcing twice leaves PYTHONPATH as it was after the first time; anything else on
    # it (/tmp/vllm-site) stays, after ours.
    PYTHONPATH=$(_semcoder_path_without "${PYTHONPATH:-}" "$root" "$site")
    export PYTHONPATH="$root:$site${PYTHONPATH:+:$PYTHONPATH}"
    PATH=$(_semcoder_path_without "$PATH" "$site/bin")
    export PATH="$site/bin:$PATH"
    # Python holds output back when piped, and the device call only shows what was flushed.
    export PYTHONUNBUFFERED=1
    # NVLink multicast must stay off on these shared hosts (KINDS.md): a program using it can take the
    # host's GPUs out of service. Set here too so that every child (torchrun, vLLM workers) inherits it.
    export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
    python3 - <<'PY'
from importlib.metadata import PackageNotFoundError, version
import sys

def v(name):
    try:
        return version(name)
    except PackageNotFoundError:
        return "absent"

names = ["semcoder-agent", "torch", "transformers", "vllm", "pydantic", "openai", "fastapi", "langgraph", "datasets"]
print("gpu_env: python", sys.version.split()[0], "|", " | ".join(f"{n} {v(n)}" for n in names))

PY
}

# The wheel's entry_points.txt is a snapshot taken when .whl/gpu was built, but `semcoder` discovers its
# subcommands from it; rewrite it from the checkout's pyproject.toml so a command added since then
# still shows up without rebuilding the wheel.
_semcoder_sync_entry_points() {
    python3 - "$1/pyproject.toml" "$2" <<'PY'
import glob, sys, tomllib

pyproject, site = sys.argv[1], sys.argv[2]
project = tomllib.load(open(pyproject, "rb"))["project"]
sections = {"console_scripts": project.get("scripts", {}), **project.get("entry-points", {})}
text = "".join(f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items()) + "\n"
               for group, entries in sections.items())
found = glob.glob(f"{site}/semcoder_agent-*.dist-info/entry_points.txt")
if len(found) != 1:
    sys.exit(f"gpu_env: expected one semcoder_agent dist-info in {site}, found {len(found)}")
open(found[0], "w").write(text)
PY
}

# A colon list without the given entries (exact matches; empty entries dropped too).
_semcoder_path_without() {
    local list=$1 entry kept="" drop skip
    shift
    local IFS=:
    for entry in $list; do
        skip=
        for drop in "$@"; do [ "$entry" = "$drop" ] && skip=1; done
        [ -z "$entry" ] || [ -n "$skip" ] || kept="${kept:+$kept:}$entry"
    done
    printf '%s' "$kept"
}

_semcoder_gpu_env
_semcoder_gpu_env_rc=$?
unset -f _semcoder_gpu_env _semcoder_sync_entry_points _semcoder_path_without
# `return` when sourced, so a failure never closes the caller's shell.
return $_semcoder_gpu_env_rc 2>/dev/null || exit $_semcoder_gpu_env_rc

# Rebuilding .whl/gpu here (where PyPI is reachable); versions as installed in the dev environment.
# Only packages that neither the image (KINDS.md, "Python packages already there") nor the vLLM pack
# (../shared/gpu/vllm-0.25.0-wheels.txt) has: a copy would shadow theirs. zstandard (5.5 MB), which
# langsmith lists, is left out on purpose: langsmith imports it only to compress trace uploads and
# falls back without it, and nothing is uploaded from that machine.
#   rm -rf .whl/gpu && python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
#     -d .whl/gpu docker==7.1.0 langgraph==1.2.24 langgraph-checkpoint==4.3.2 langgraph-checkpoint-sqlite==3.1.2 \
#     langgraph-prebuilt==1.1.3 langgraph-sdk==0.4.14 langchain-core==1.8.3 langchain-protocol==0.0.20 \
#     langsmith==0.15.1 jsonpatch==1.33 jsonpointer==3.1.1 tenacity==9.2.1 uuid-utils==0.19.0 orjson==3.13.0 \
#     ormsgpack==1.13.1 distro==1.9.0 requests-toolbelt==1.0.0 aiosqlite==0.22.1 sqlite-vec==0.1.9 \
#     datasets==5.2.0 multiprocess==0.70.19
#   python3 -m pip wheel --no-deps -w .whl/gpu .
