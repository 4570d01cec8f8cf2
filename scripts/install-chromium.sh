#!/usr/bin/env bash
# Browser tests drive Debian's chromium (Playwright's own browser download cannot work offline).
set -euo pipefail
[ -x /usr/bin/chromium ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
else
    echo "warning: cannot install Debian's chromium (not root, no sudo): the browser tests will be skipped" >&2
fi
