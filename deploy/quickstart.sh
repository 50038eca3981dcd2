#!/usr/bin/env bash
# One machine, from a checkout to a running gateway: installs what building and running it
# needs (deploy/install-runtime-deps: Rust, librocksdb-dev, FUSE 3, Samba, Node.js; nothing the
# test suite alone uses), builds the console when its sources changed (deploy/build-console),
# builds gatewayd, gwctl and brickd, and runs `gatewayd up`: volume `vol` over four local
# bricks in $DATA/bricks (2 x 2 distributed-replicate), FUSE-mounted at $MOUNT, with S3, NFSv3
# and SMB on loopback. A second run rebuilds nothing and starts in seconds.
#
#   sudo deploy/quickstart.sh                       # DATA=/var/lib/gatewayd, MOUNT=/mnt/vol
#   sudo MOUNT=/srv/vol DATA=/tmp/gw deploy/quickstart.sh --bricks 2 --s3 off
#
# Extra arguments go to `gatewayd up` (gatewayd up --help). It runs in the foreground;
# Ctrl-C unmounts, stops the bricks and exits.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
  echo "quickstart: run this as root (e.g. sudo $0): gatewayd FUSE-mounts the volume and its bricks keep trusted.* xattrs, which need root" >&2
  exit 1
fi

cd "$(dirname "$0")/.."

MOUNT="${MOUNT:-/mnt/vol}"
DATA="${DATA:-/var/lib/gatewayd}"

deploy/install-runtime-deps
# install-runtime-deps may have installed Rust with rustup just now, into a PATH its own process
# kept.
export PATH="$HOME/.cargo/bin:$PATH"
deploy/build-console
cargo build --release --bins -p gateway -p brickd

mkdir -p "$MOUNT"
exec ./target/release/gatewayd up --data "$DATA" --mount "$MOUNT" "$@"
