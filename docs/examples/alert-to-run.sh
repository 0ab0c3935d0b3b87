#!/usr/bin/env bash
# Alert to run, end to end, on this machine: `runbook serve` with one worker on loopback,
# one alert posted as a monitoring system would, the run it starts followed to its end.
# Used by `make run`; needs the package installed (runbook on PATH or RUNBOOK=...).
set -euo pipefail

RUNBOOK=${RUNBOOK:-runbook}
PORT=${PORT:-8765}
LOGS=/tmp/runbook-runner-demo/alert
URL=http://127.0.0.1:$PORT

mkdir -p "$LOGS"
touch -d '10 days ago' "$LOGS/app.log.1"          # a rotated log old enough to remove
"$RUNBOOK" serve --insecure-local --port "$PORT" --workers 1 2>serve.log &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true; rm -f serve.log' EXIT
for _ in $(seq 100); do curl -sf "$URL/readyz" >/dev/null && break; sleep 0.1; done

alert() {  # $1: firing or resolved; the same fingerprint, so both are one alert and one incident
    curl -sS "$URL/api/v1/alerts" -H 'Content-Type: application/json' -d @- <<JSON
{"labels": {"alertname": "DiskAlmostFull", "env": "staging", "instance": "web-1:9100",
            "mountpoint": "$LOGS"},
 "annotations": {"log_dir": "$LOGS", "summary": "demo"},
 "status": "$1", "fingerprint": "$FINGERPRINT"}
JSON
}
FINGERPRINT=demo-$(date +%s%N)

echo "POST $URL/api/v1/alerts  (DiskAlmostFull on web-1, staging)"
answer=$(alert firing)
echo "$answer"
run=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["alerts"][0]["run"]["id"])' <<<"$answer")
for _ in $(seq 300); do
    status=$(curl -sS "$URL/api/v1/runs/$run" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
    case $status in queued|running) sleep 0.2 ;; *) break ;; esac
done
"$RUNBOOK" runs show "$run"
if [ "$status" = succeeded ]; then
    echo "the rotated log is gone: the runbook acted"
    # What the monitoring system does once the disk has room: the alert resolves, and so does the
    # incident, as a fix that held (left firing, the runner would escalate 10 minutes later:
    # "the fix did not hold").
    alert resolved >/dev/null
    echo "the alert resolved: the incident is resolved, a fix that held"
else  # e.g. rejected by the cooldown when this demo ran minutes ago: authority at work
    echo "run $run ended $status (see its reason above)"
fi
