#!/usr/bin/env bash
# Installs everything the test suite needs that cargo does not: the moto AWS emulator and
# the aiosmtpd SMTP server and cfn-lint, in a virtualenv outside the clone. Idempotent; always runs the
# install (pip is quick when everything is already satisfied).
set -euo pipefail
VENV="${TRAILWATCH_VENV:-$HOME/.cache/trailwatch/venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  'moto[server]==5.2.5' 'aiosmtpd==1.4.6' 'cfn-lint>=1.20'
echo "test dependencies ready in $VENV" >&2
