# Shared by scripts/run and scripts/test: installs what is missing and builds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
JOBS="${JOBS:-$(nproc)}"

# Debian 12 packages the build and the tests need.
PACKAGES=(
  cmake ninja-build g++ ccache pkg-config
  libgtest-dev libgmock-dev librapidcheck-dev
  libxxhash-dev libzstd-dev liblz4-dev libjemalloc-dev libcli11-dev nlohmann-json3-dev libboost-dev
  libabsl-dev
  python3 python3-pytest python3-redis python3-pymemcache redis-tools curl
)

ensure_packages() {
  local missing=()
  for p in "${PACKAGES[@]}" "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  if ((${#missing[@]} == 0)); then
    return 0
  fi
  echo "==> installing: ${missing[*]}"
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  if ! "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"; then
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
}

# build DIR BUILD_TYPE [extra cmake args...] [-- targets...]
build() {
  local dir="$1" type="$2"
  shift 2
  local args=() targets=()
  while (($#)); do
    if [[ "$1" == "--" ]]; then
      shift
      targets=("$@")
      break
    fi
    args+=("$1")
    shift
  done
  export CCACHE_DIR="${CCACHE_DIR:-$ROOT/.cache/ccache}"
  cmake -S "$ROOT" -B "$ROOT/$dir" -G Ninja -DCMAKE_BUILD_TYPE="$type" "${args[@]}" >/dev/null
  ninja -C "$ROOT/$dir" -j "$JOBS" "${targets[@]}"
}
