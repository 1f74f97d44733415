#!/usr/bin/env bash
# Regenerates the key and lint-rule tables of docs/config.md from the schema rows
# (`veltrix check --print-schema`), between the BEGIN/END GENERATED markers.
# Usage: scripts/gen-config-doc.sh [VELTRIX_BINARY]   (default build/release/veltrix)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$top/build/release/veltrix}
doc=$top/docs/config.md
gen=$(mktemp)
trap 'rm -f "$gen" "$gen.new"' EXIT
"$bin" check --print-schema >"$gen"
awk -v gen="$gen" '
	/^<!-- BEGIN GENERATED -->$/ { print; while ((getline line < gen) > 0) print line; skip = 1; next }
	/^<!-- END GENERATED -->$/ { skip = 0 }
	!skip { print }
' "$doc" >"$gen.new"
grep -q '^<!-- END GENERATED -->$' "$gen.new" || { echo "gen-config-doc: markers missing in $doc" >&2; exit 1; }
mv "$gen.new" "$doc"
