#!/usr/bin/env bash
# Install the Debian packages the test suite and the report need, if any is missing:
#   postgresql            server binaries for the throw-away test server (src/abscopal/store/pgserver.py);
#                         nothing here starts a service: the tests start their own on a private port
#   fonts-wqy-microhei    a CJK font, so Chinese pages render (and their screenshots show characters, not boxes)
#   chromium              the browser for the Playwright tests (tests/web/browser.py: executable_path /usr/bin/chromium);
#                         Playwright's own browser download (playwright install) is never used
#   libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core
#                         what WeasyPrint needs to lay out and embed fonts in report.pdf
set -euo pipefail
PACKAGES=(postgresql chromium libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core fonts-wqy-microhei)
missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "Installing Debian packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "Missing Debian packages (${missing[*]}) and this user cannot install them; as root run:" >&2
    echo "  apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
