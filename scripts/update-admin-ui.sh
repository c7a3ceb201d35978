#!/usr/bin/env bash
# Refreshes the vendored Socket.IO Admin UI (crates/admin-ui/ui/) from the
# npm package @socket.io/admin-ui: its built single-page app (ui/dist,
# without source maps) and its LICENSE (MIT). The server embeds these files
# and serves them at /admin/.
#
# Also the icon font the page loads from a CDN (@mdi/font: the minified
# CSS and the WOFF2 font, Apache-2.0, in ui/mdi/), which the server serves
# in its place so that the UI's buttons have icons without the internet.
#
#   scripts/update-admin-ui.sh                  # the versions in ui/VERSION, ui/mdi/VERSION
#   scripts/update-admin-ui.sh 0.5.1 7.4.47     # other versions
#
# Needs npm (it checks the tarball's integrity against the registry's).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/crates/admin-ui/ui"
version="${1:-$(cat "$dest/VERSION" 2>/dev/null || echo latest)}"
mdi_version="${2:-$(cat "$dest/mdi/VERSION" 2>/dev/null || echo latest)}"

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
mkdir "$work/mdi"
(cd "$work/mdi" && npm pack --silent "@mdi/font@$mdi_version" > tarball)
tar -xzf "$work/mdi/$(cat "$work/mdi/tarball")" -C "$work/mdi"
mdi_resolved="$(node -p 'require(process.argv[1]).version' "$work/mdi/package/package.json")"
rm -rf "$dest/mdi"
mkdir -p "$dest/mdi/css" "$dest/mdi/fonts"
sed -E '/^\/\*# sourceMappingURL=.*$/d' "$work/mdi/package/css/materialdesignicons.min.css" \
    > "$dest/mdi/css/materialdesignicons.min.css"
# Every browser the UI supports reads WOFF2, the first format the CSS
# offers after the EOT that only old IE takes.
cp "$work/mdi/package/fonts/materialdesignicons-webfont.woff2" "$dest/mdi/fonts/"
cp "$work/mdi/package/LICENSE" "$dest/mdi/LICENSE"
echo "$mdi_resolved" > "$dest/mdi/VERSION"

echo "vendored @socket.io/admin-ui $resolved and @mdi/font $mdi_resolved into ${dest#"$root"/}:"
(cd "$dest" && find . -type f | sort)
