#!/usr/bin/env bash
# Refreshes crates/socketio/client-dist: the built files of the
# socket.io-client npm package that every iocluster server serves at
# /socket.io/socket.io*.js (as Node's socket.io does with serveClient), so a
# page can load the client from the server it talks to, with no CDN.
#
#     scripts/update-client-bundle.sh [VERSION]    # default: latest 4.x
set -euo pipefail
cd "$(dirname "$0")/.."
version="${1:-4}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "socket.io-client@$version" >/dev/null && tar xzf socket.io-client-*.tgz)
dest=crates/socketio/client-dist
rm -f "$dest"/socket.io*.js "$dest"/socket.io*.js.map
cp "$work"/package/dist/socket.io*.js "$work"/package/dist/socket.io*.js.map "$dest"/
cp "$work"/package/LICENSE "$dest"/LICENSE
node -p "require('$work/package/package.json').version" > "$dest"/VERSION
echo "socket.io-client $(cat "$dest"/VERSION) in $dest"
