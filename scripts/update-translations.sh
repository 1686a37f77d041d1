#!/usr/bin/env bash
# Extract the web application's messages (babel.cfg) and merge them into each catalog under
# src/abscopal/web/locales/<lang>/LC_MESSAGES/messages.po. Translate the new empty msgstr entries, then run
# `make test` (tests/web/test_translations.py fails on any message without a translation).
# The other *.po files beside messages.po are the page areas' catalogs (screening, radiotherapy, ...; they also
# hold labels that come from data, such as the protocol's criteria, which extraction cannot see): the web app
# merges them all. A message already translated in an area catalog is not added to messages.po again.
set -euo pipefail
cd "$(dirname "$0")/.."
BABEL=".venv/bin/pybabel"
POT="$(mktemp --suffix=.pot)"
trap 'rm -f "$POT"' EXIT
"$BABEL" -q extract -F babel.cfg --project=Abscopal --copyright-holder="The Abscopal authors" \
  --no-location --sort-output -o "$POT" . >/dev/null
for lang in zh_Hans; do
  po="src/abscopal/web/locales/$lang/LC_MESSAGES/messages.po"
  if [ -f "$po" ]; then
    "$BABEL" -q update -i "$POT" -o "$po" -l "$lang" --no-fuzzy-matching --ignore-obsolete >/dev/null
  else
    mkdir -p "$(dirname "$po")"
    "$BABEL" -q init -i "$POT" -o "$po" -l "$lang" >/dev/null
  fi
  "$(dirname "$BABEL")/python" - "$po" <<'PY'
import sys
from pathlib import Path
from babel.messages.pofile import read_po, write_po
main = Path(sys.argv[1])
translated = set()
for other in main.parent.glob("*.po"):
    if other != main:
        with other.open("rb") as f:
            translated |= {m.id for m in read_po(f) if m.id and m.string and all(m.string if isinstance(m.string, tuple) else [m.string])}
with main.open("rb") as f:
    catalog = read_po(f)
for m in list(catalog):
    if m.id and m.id in translated and not (m.string if isinstance(m.string, str) else any(m.string)):
        catalog.delete(m.id)
with main.open("wb") as f:
    write_po(f, catalog, no_location=True, sort_output=True)
PY
  echo "$po: $(grep -c '^msgid ' "$po") messages, $(grep -c '^msgstr ""$' "$po") untranslated (incl. header)"
done
