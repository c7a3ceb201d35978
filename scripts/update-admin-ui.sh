#!/usr/bin/env bash
# Refreshes the vendored Socket.IO Admin UI (crates/admin-ui/ui/) from the
# npm package @socket.io/admin-ui: its built single-page app (ui/dist,
# without source maps) and its LICENSE (MIT). The server embeds these files
# and serves them at /admin/.
#
#   scripts/update-admin-ui.sh            # the version in ui/VERSION
#   scripts/update-admin-ui.sh 0.5.1      # another version
#
# Needs npm (it checks the tarball's integrity against the registry's).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/crates/admin-ui/ui"
version="${1:-$(cat "$dest/VERSION" 2>/dev/null || echo latest)}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "@socket.io/admin-ui@$version" > tarball)
tarball="$work/$(cat "$work/tarball")"
tar -xzf "$tarball" -C "$work"
resolved="$(node -p 'require(process.argv[1]).version' "$work/package/package.json")"

rm -rf "$dest/dist"
mkdir -p "$dest/dist"
cp -R "$work/package/ui/dist/." "$dest/dist/"
find "$dest/dist" -type f -name '*.map' -delete
# The bundles name their source maps; we ship none.
find "$dest/dist" -type f \( -name '*.js' -o -name '*.css' \) -exec sed -i -E '/^\/[\/*]# sourceMappingURL=.*$/d' {} +
cp "$work/package/LICENSE" "$dest/LICENSE"
echo "$resolved" > "$dest/VERSION"
echo "vendored @socket.io/admin-ui $resolved into ${dest#"$root"/}:"
(cd "$dest" && find . -type f | sort)
