#!/bin/sh
# Headless Chromium for the report's browser tests: found, installed (root + apt-get),
# or explained. Without it those tests are reported as skipped, unless
# SWEEP_REQUIRE_BROWSER=1 (CI), where a missing browser is an error.
for name in chromium chromium-browser google-chrome; do
  if command -v "$name" >/dev/null 2>&1; then exit 0; fi
done
if [ "$(id -u 2>/dev/null)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "== installing headless Chromium for the report's browser tests (apt-get, about a minute)"
  if apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends chromium >/dev/null; then
    exit 0
  fi
  echo "warning: apt-get could not install chromium" >&2
else
  echo "note: headless Chromium was not found and cannot be installed here (that needs root" >&2
  echo "      and apt-get). Install it yourself, e.g. 'sudo apt-get install chromium' on" >&2
  echo "      Debian/Ubuntu, then rerun 'make test'." >&2
fi
if [ "${SWEEP_REQUIRE_BROWSER:-}" = "1" ]; then
  echo "error: SWEEP_REQUIRE_BROWSER=1 and no Chromium: the browser tests cannot run" >&2
  exit 1
fi
echo "      Until then the report's browser tests are reported as skipped." >&2
exit 0
