#!/usr/bin/env bash
# The sendguard demo: the relay, the HTTP API and the reviewer web UI on the
# bundled demo directory, in one `sendguard serve --with-relay` process.
#
# Starts a demo next hop (an SMTP sink that prints what it is given) and
# sendguard with demo/sendguard.toml (quarantine: var/demo-quarantine.db),
# sends two sample mails through the relay (one goes through, one is held),
# shows what is held, makes a reviewer account and an API token, checks a fax
# number over HTTP (it is held too, and its hold id printed), then keeps
# running so that you can sign in at http://127.0.0.1:8025/ and release or
# cancel the held mail and fax. Each run adds one more held fax to the demo
# quarantine. Ctrl-C stops.
#
# Ports: SENDGUARD_RELAY__LISTEN (default 127.0.0.1:10025), DEMO_SINK_PORT
# (10026), SENDGUARD_API__LISTEN (127.0.0.1:8025).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
SG=.venv/bin/sendguard
CONFIG=demo/sendguard.toml
LISTEN=${SENDGUARD_RELAY__LISTEN:-127.0.0.1:10025}
API=${SENDGUARD_API__LISTEN:-127.0.0.1:8025}
RELAY_PORT=${LISTEN##*:}
SINK_PORT=${DEMO_SINK_PORT:-10026}
export SENDGUARD_RELAY__LISTEN=$LISTEN
export SENDGUARD_RELAY__NEXT_HOP=127.0.0.1:$SINK_PORT
export SENDGUARD_API__LISTEN=$API
export SENDGUARD_REVIEW__BASE_URL=http://$API
mkdir -p var

say() { printf '\n\033[1m%s\033[0m\n' "$*"; }

say "1. Checking single sends from the command line"
sg() { echo "\$ sendguard $*"; $SG "$@"; echo; }
D=(-d demo/directory.json)
sg check email --to "jane.smith@gmail.com" --patient 9434765919 --subject "[secure] results" "${D[@]}"
sg check email --to "jane.smith@gmial.com" --patient 9434765919 "${D[@]}"
sg check fax "0113 496 0010" --intended B82005 "${D[@]}"

say "2. The SMTP relay, the HTTP API and the reviewer web UI on the demo directory"
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
$SG serve --with-relay --config "$CONFIG" --log-level WARNING &
pids+=($!)

wait_port() {
    for _ in $(seq 1 150); do
        if $PY -c "import socket; socket.create_connection(('127.0.0.1', $1), 1)" 2>/dev/null; then
            return 0
        fi
        sleep 0.2
    done
    echo "sendguard did not start listening on port $1" >&2
    exit 1
}
wait_port "$RELAY_PORT"
wait_port "${API##*:}"

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

say "6. A reviewer account and an API token for a practice system (demo only)"
PASSWORD=$($PY -c 'import secrets; print(secrets.token_urlsafe(9))')
if ! printf '%s\n' "$PASSWORD" | $SG users add reviewer --role reviewer --password-stdin -c "$CONFIG" >/dev/null 2>&1; then
    printf '%s\n' "$PASSWORD" | $SG users passwd reviewer --password-stdin -c "$CONFIG" >/dev/null
fi
$SG api-token revoke demo-practice -c "$CONFIG" >/dev/null 2>&1
TOKEN=$($SG api-token add demo-practice --role check -c "$CONFIG" | tail -n 1)
echo "    web UI user: reviewer, password: $PASSWORD"
echo "    API token for demo-practice: $TOKEN"

say "7. A practice system checks a fax number over HTTP before dialling"
echo "\$ curl -H 'Authorization: Bearer \$TOKEN' -d '{\"number\": \"0113 496 0010\", \"intended\": \"B82005\"}' http://$API/v1/check/fax"
$PY - "$API" "$TOKEN" <<'EOF'
import json, sys, urllib.request
api, token = sys.argv[1], sys.argv[2]
req = urllib.request.Request(
    f"http://{api}/v1/check/fax",
    data=json.dumps({"number": "0113 496 0010", "intended": "B82005"}).encode(),
    headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
)
with urllib.request.urlopen(req, timeout=10) as r:
    v = json.load(r)
print(f"    action: {v['action']}")
for f in v["findings"]:
    hint = f" (suggestion: {f['suggestion']})" if f.get("suggestion") else ""
    print(f"    {f['code']}: {f['message']}{hint}")
if v.get("hold_id"):
    print(f"    fax held for a reviewer as {v['hold_id']}: it is in the web UI's held list")
    print(f"    beside the mail; the practice system polls GET /v1/held/{v['hold_id']}")
EOF

cat <<EOF

sendguard keeps running:
  reviewer web UI  http://$API/  sign in as "reviewer" with the password above,
                   open the held mail or fax, see why it was held, release or cancel it
  SMTP relay       127.0.0.1:$RELAY_PORT, e.g.
      swaks --server 127.0.0.1:$RELAY_PORT --from gp@nhs.net --to jane.smith@gmial.com \\
            --header "X-Sendguard-Patient: 9434765919"
  HTTP API         http://$API/docs
  from the shell   $SG held list -c $CONFIG
                   $SG held show HOLD_ID -c $CONFIG
                   $SG held release HOLD_ID --as reviewer --reason confirmed-correct -c $CONFIG
Ctrl-C stops sendguard and the demo next hop.
EOF
wait "${pids[1]}"
