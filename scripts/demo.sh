#!/usr/bin/env bash
# Run sendguard on the bundled demo directory: a few sends it lets through,
# holds or rejects, each with the reasons.
set -uo pipefail
cd "$(dirname "$0")/.."
sg() { echo; echo "\$ sendguard $*"; .venv/bin/sendguard "$@"; }
D=(-d demo/directory.json)
sg check email --to "jane.smith@gmail.com" --patient 9434765919 --subject "[secure] results" "${D[@]}"
sg check email --to "jane.smith@gmial.com" --patient 9434765919 "${D[@]}"
sg check email --to "Jane Smith <david.brown@hotmail.co.uk>" --body "NHS 943 476 5919" "${D[@]}"
sg check fax "0113 496 0010" --intended B82005 "${D[@]}"
sg check letter --addressee "Mrs J Smith" --address "3 Park Lane, Leeds LS6 2AB" --patient 9434765919 "${D[@]}"
exit 0
