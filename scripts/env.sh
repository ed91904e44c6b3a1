# shellcheck shell=bash
# Source this file (`. scripts/env.sh`) to get the project's toolchain first on
# PATH. Made for offline machines: everything it names is installed by
# scripts/setup. tools/devstack.py computes the same environment in Python.
#
#   LOT_ROOT                repo root
#   PATH                    .cache/node22/.../bin (when setup installed Node 22),
#                           node_modules/.bin, .venv/bin, then the caller's PATH
#   MINIFLARE_WORKERD_PATH  .cache/workerd-wrapper: real workerd + the local
#                           Pyodide dev bundle folder
#   WRANGLER_SEND_METRICS   false (no telemetry; there is no network anyway)

LOT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export LOT_ROOT

_lot_prepend_path() {
    case ":$PATH:" in
        *":$1:"*) ;;
        *) PATH="$1:$PATH" ;;
    esac
}
_lot_prepend_path "$LOT_ROOT/.venv/bin"
_lot_prepend_path "$LOT_ROOT/node_modules/.bin"
for _lot_node_bin in "$LOT_ROOT"/.cache/node22/node_modules/node-linux-*/bin; do
    if [ -x "$_lot_node_bin/node" ]; then
        _lot_prepend_path "$_lot_node_bin"
    fi
done
unset _lot_node_bin
unset -f _lot_prepend_path
export PATH

export MINIFLARE_WORKERD_PATH="$LOT_ROOT/.cache/workerd-wrapper"
export WRANGLER_SEND_METRICS=false
