#!/usr/bin/env bash
# The browser test's set-up (test/serve/browser.test.ts): Debian's chromium, installed with apt when missing. Only
# the test set-up runs this (scripts/test.sh), so `mumu` itself never pulls in a browser. Nothing downloads a
# browser build: playwright-core drives this chromium through executablePath.
set -euo pipefail
say() { printf '[mumu setup] %s\n' "$*" >&2; }

[ -x /usr/bin/chromium ] && exit 0
if [ ! -f /etc/debian_version ]; then
  say "no /usr/bin/chromium and not Debian: the browser test will be skipped"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  say "no /usr/bin/chromium: the browser test will be skipped. To run it:  sudo apt-get install -y chromium"
  exit 0
fi
say "installing chromium with apt for the browser test (one time, ~15-40 s)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends chromium >/dev/null
