#!/usr/bin/env bash
# Functions longer than LIMIT lines (default 80) in the product and the harness (tests aside),
# longest first; and the 15 largest source files. Needs universal-ctags (Debian's
# universal-ctags). Usage: scripts/long-functions.sh [LIMIT]
set -euo pipefail
cd "$(dirname "$0")/.."
limit=${1:-80}
echo "largest files:"
git ls-files '*.cpp' '*.h' | xargs wc -l | grep -v ' total$' | sort -rn | head -15
echo "functions over $limit lines:"
ctags --fields=+ne --c++-kinds=f -R -o - core transports services runtime sim properties runs report chaos apps testkit bench \
  | awk -F'\t' -v limit="$limit" '{
      l=""; e=""; for (i=1;i<=NF;i++) { if ($i ~ /^line:/) l=substr($i,6); if ($i ~ /^end:/) e=substr($i,5) }
      if (l!="" && e!="" && e-l+1>limit) printf "%5d  %s:%s %s\n", e-l+1, $2, l, $1 }' | sort -rn
