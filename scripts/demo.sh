#!/usr/bin/env bash
# The sendguard demo: the SMTP relay on the bundled demo directory.
#
# Starts a demo next hop (an SMTP sink that prints what it is given) and
# `sendguard relay` with demo/sendguard.toml (quarantine: var/demo-quarantine.db),
# sends two sample mails through it (one goes through, one is held), shows
# what is held, then keeps running so that you can send your own. Ctrl-C stops.
#
# Ports: SENDGUARD_RELAY__LISTEN (default 127.0.0.1:10025), DEMO_SINK_PORT (10026).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
SG=.venv/bin/sendguard
CONFIG=demo/sendguard.toml
LISTEN=${SENDGUARD_RELAY__LISTEN:-127.0.0.1:10025}
RELAY_PORT=${LISTEN##*:}
SINK_PORT=${DEMO_SINK_PORT:-10026}
export SENDGUARD_RELAY__LISTEN=$LISTEN
export SENDGUARD_RELAY__NEXT_HOP=127.0.0.1:$SINK_PORT

say() { printf '\n\033[1m%s\033[0m\n' "$*"; }

say "1. Checking single sends from the command line"
sg() { echo "\$ sendguard $*"; $SG "$@"; echo; }
D=(-d demo/directory.json)
sg check email --to "jane.smith@gmail.com" --patient 9434765919 --subject "[secure] results" "${D[@]}"
sg check email --to "jane.smith@gmial.com" --patient 9434765919 "${D[@]}"
sg check fax "0113 496 0010" --intended B82005 "${D[@]}"

say "2. The SMTP relay on the demo directory"
pids=()
stop() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
}
trap stop EXIT
trap 'exit 0' INT TERM

# the demo next hop: prints every message it is handed
$PY -u -m aiosmtpd -n -l "127.0.0.1:$SINK_PORT" -c aiosmtpd.handlers.Debugging 2>&1 \
    | sed -u 's/^/    [next hop] /' &
pids+=($!)
$SG relay --config "$CONFIG" &
pids+=($!)

for _ in $(seq 1 100); do
    if $PY -c "import socket,sys; socket.create_connection(('127.0.0.1', $RELAY_PORT), 1)" 2>/dev/null; then
        break
    fi
    sleep 0.2
done

send() {  # send FROM TO SUBJECT: one message through the relay, printing the reply
    $PY - "$RELAY_PORT" "$@" <<'EOF'
import smtplib, sys
port, sender, rcpt, subject = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
msg = (f"From: Dr A Patel <{sender}>\r\nTo: Jane Smith <{rcpt}>\r\nSubject: {subject}\r\n"
       "X-Sendguard-Patient: 9434765919\r\n\r\nDear Jane,\r\nYour results are normal.\r\n")
with smtplib.SMTP("127.0.0.1", port, local_hostname="practice.demo") as s:
    s.ehlo()
    s.mail(sender)
    s.rcpt(rcpt)
    code, reply = s.data(msg.encode())
    print(f"    relay answered: {code} {reply.decode()}")
EOF
}

say "3. A mail to the patient's own address (goes through to the next hop)"
send gp@nhs.net jane.smith@gmail.com "[secure] Your results"
sleep 1
say "4. The same mail with a typo in the domain (held, and the sender is told)"
send gp@nhs.net jane.smith@gmial.com "Your results"
sleep 1

say "5. What is held"
echo "\$ sendguard held list -c $CONFIG"
$SG held list -c "$CONFIG"

cat <<EOF

The relay keeps running on 127.0.0.1:$RELAY_PORT. Send your own mail to it, e.g.
    swaks --server 127.0.0.1:$RELAY_PORT --from gp@nhs.net --to jane.smith@gmial.com \\
          --header "X-Sendguard-Patient: 9434765919"
or without swaks:
    $PY -c 'import smtplib; smtplib.SMTP("127.0.0.1", $RELAY_PORT).sendmail("gp@nhs.net", ["jane.smith@gmial.com"], b"Subject: test\r\nX-Sendguard-Patient: 9434765919\r\n\r\nHello\r\n")'
See what is held, and why:
    $SG held list -c $CONFIG
    $SG held show HOLD_ID -c $CONFIG
Ctrl-C stops the relay and the demo next hop.
EOF
wait "${pids[1]}"
