#!/usr/bin/env bash
# Installs the Debian packages TraceChain needs, pinned: a CJK TrueType font for the certificates,
# Chromium for the browser tests, poppler (pdffonts/pdftoppm) and zbar for PDF/QR checks, wrk for benchmarks.
# As root it installs them; otherwise it prints the exact command and exits non-zero.
set -euo pipefail

PINNED=(
  "fonts-wqy-zenhei=0.9.45-8"
  "chromium=156.0.8078.79-1~deb12u1"
  "poppler-utils=22.12.0-2+deb12u3"
  "zbar-tools=0.23.92-7+deb12u1"
  "wrk=4.1.0-3+b2"
)
# Which binary/file proves each package is present.
CHECKS=(
  "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"
  "/usr/bin/chromium"
  "/usr/bin/pdffonts"
  "/usr/bin/zbarimg"
  "/usr/bin/wrk"
)

missing=()
for i in "${!PINNED[@]}"; do
  [ -e "${CHECKS[$i]}" ] || missing+=("${PINNED[$i]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != "0" ]; then
  echo "TraceChain needs these Debian packages; run as root:" >&2
  echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
if ! apt-get install -y -q --no-install-recommends "${missing[@]}"; then
  # Debian security updates replace Chromium's version in the archive; the pinned one may be gone.
  echo "pinned versions unavailable; installing the archive's current versions of: ${missing[*]%%=*}" >&2
  names=()
  for p in "${missing[@]}"; do names+=("${p%%=*}"); done
  apt-get install -y -q --no-install-recommends "${names[@]}"
fi
