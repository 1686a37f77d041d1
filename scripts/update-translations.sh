#!/usr/bin/env bash
# Extract the web application's messages (babel.cfg) and merge them into each catalog under
# src/abscopal/web/locales/<lang>/LC_MESSAGES/messages.po. Translate the new empty msgstr entries, then run
# `make test` (tests/web/test_translations.py fails on any message without a translation).
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
  echo "$po: $(grep -c '^msgid ' "$po") messages, $(grep -c '^msgstr ""$' "$po") untranslated (incl. header)"
done
