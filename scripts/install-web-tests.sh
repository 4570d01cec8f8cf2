#!/usr/bin/env bash
# Test-time tools of the browser tests, from the npm registry (never a CDN): axe-core, which tests/web/test_browser.py
# injects into every page to check accessibility. Installed into web-tests/node_modules (git-ignored) from the
# committed lock file; skipped when already at the locked version.
set -euo pipefail
cd "$(dirname "$0")/../web-tests"
want=$(node -e "console.log(require('./package-lock.json').packages['node_modules/axe-core'].version)" 2>/dev/null || echo "")
have=$(node -e "console.log(require('./node_modules/axe-core/package.json').version)" 2>/dev/null || echo "")
if [ -n "$want" ] && [ "$want" = "$have" ]; then
    exit 0
fi
if ! command -v npm >/dev/null; then
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
    else
        echo "warning: npm is not installed: the accessibility checks of the browser tests will fail" >&2
        exit 0
    fi
fi
npm ci --no-audit --no-fund --loglevel=error
