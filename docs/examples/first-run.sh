#!/usr/bin/env bash
# What `make run` does once installed: check the catalog, dry-run a runbook by hand, then take an
# alert to a run end to end on this machine (a real server on loopback, a real alert over HTTP,
# a real Ansible run on localhost), and say where everything went.
#
# It can run again and again: its records go to a store of its own (demo.db in the state
# directory), emptied at each start, so the authority limits a previous demo used up (the
# runbook's 10-minute cooldown on web-1) do not refuse this one. Your own runs go to the
# default store beside it.
#
# Needs curl, and the package installed (`runbook` on PATH, or RUNBOOK=path/to/runbook).
set -euo pipefail

RUNBOOK=${RUNBOOK:-runbook}
PYTHON=${PYTHON:-$(dirname "$(command -v "$RUNBOOK")")/python}
[ -x "$PYTHON" ] || PYTHON=python3
command -v curl >/dev/null || { echo "make run: the demo posts its alert with curl; install curl" >&2; exit 1; }

STATE=$("$RUNBOOK" config state_dir)
DEMO_DB=$STATE/demo.db
LOGS=${TMPDIR:-/tmp}/runbook-runner-demo            # the "log volume" the runbook cleans
WORK=$(mktemp -d)                                   # the server's log; removed at the end
mkdir -p "$STATE" "$LOGS"
rm -f "$DEMO_DB" "$DEMO_DB-wal" "$DEMO_DB-shm"
rb() { "$RUNBOOK" --db "$DEMO_DB" "$@"; }
json() { "$PYTHON" -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
say() { printf '\n== %s\n' "$*"; }

say "1. The catalog in ./runbooks: shape and meaning, each runbook's sample alerts, the list"
rb validate --check-codeowners runbooks/
rb test runbooks/
rb list

say "2. A runbook by hand, as a dry run (Ansible's check mode: nothing changes)"
rb run disk-full-cleanup --param host=web-1 --param "log_dir=$LOGS" --env staging --dry-run --yes
dry=$(rb runs -o json --limit 1 | json 'd[0]["id"]')

say "3. An alert drives a run: runbook serve, a DiskAlmostFull alert for web-1, the run it starts"
touch -d '10 days ago' "$LOGS/app.log.1"            # a rotated log old enough to remove
"$RUNBOOK" --db "$DEMO_DB" serve --insecure-local --port 0 --workers 1 2>"$WORK/serve.log" &
SERVER=$!                                           # the server itself (not a subshell): TERM stops it
trap 'kill -TERM $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
URL=
for _ in $(seq 200); do                             # the server says where it listens once it can
    URL=$(sed -n 's|^listening on \(http://[^ ]*\) .*|\1|p' "$WORK/serve.log")
    [ -n "$URL" ] && break
    kill -0 $SERVER 2>/dev/null || break
    sleep 0.1
done
if [ -z "$URL" ]; then
    echo "make run: runbook serve did not start; what it said:" >&2
    cat "$WORK/serve.log" >&2
    exit 1
fi
alert() {  # what a monitoring system posts: the same alert firing, later resolved
    curl -sS --fail-with-body "$URL/api/v1/alerts" -H 'Content-Type: application/json' -d @- <<JSON
{"status": "$1", "labels": {"alertname": "DiskAlmostFull", "env": "staging", "instance": "web-1:9100",
 "mountpoint": "$LOGS"}, "annotations": {"log_dir": "$LOGS", "summary": "log volume 93% full"}}
JSON
}
echo "POST $URL/api/v1/alerts"
answer=$(alert firing)
echo "$answer"
run=$(json 'd["alerts"][0]["run"]["id"]' <<<"$answer")
incident=$(json 'd["alerts"][0]["incident"]' <<<"$answer")
status=queued
for _ in $(seq 600); do
    status=$(curl -sS "$URL/api/v1/runs/$run" | json 'd["status"]')
    case $status in queued|running) sleep 0.1 ;; *) break ;; esac
done
rb runs show "$run" --no-output
if [ "$status" != succeeded ]; then
    echo "make run: the demo's run ended $status, not succeeded (see above); the server said:" >&2
    cat "$WORK/serve.log" >&2
    exit 1
fi
[ ! -e "$LOGS/app.log.1" ] || { echo "make run: the run succeeded but $LOGS/app.log.1 is still there" >&2; exit 1; }

say "4. The disk has room again: the monitoring system resolves the alert, and the incident with it"
alert resolved >/dev/null
for _ in $(seq 50); do
    state=$(curl -sS "$URL/api/v1/incidents/$incident" | json 'd["status"]')
    [ "$state" = resolved ] && break
    sleep 0.1
done
rb incidents show "$incident"

say "What happened"
cat <<EOF
- ./runbooks validated and tested; $("$RUNBOOK" list -o json | json 'len(d)') runbooks listed.
- A dry run of disk-full-cleanup on web-1 (run ${dry:0:12}): nothing changed.
- runbook serve took a DiskAlmostFull alert for web-1 over HTTP, opened incident ${incident:0:12}
  owned by team platform-ops (alice), and ran disk-full-cleanup (run ${run:0:12}): it $status and
  removed $LOGS/app.log.1. The alert resolved: the incident is resolved, a fix that held.
- All of it is recorded in $DEMO_DB
  (this demo's own store, emptied by each make run; your own runs go to $STATE/runbook.db).

Next (README.md walks through each):
  source .venv/bin/activate        # puts runbook on your PATH (or call .venv/bin/runbook)
  # the demo's run, every step with its output:
  runbook --db $DEMO_DB runs show ${run:0:12}
  # a server of your own: open http://127.0.0.1:8080/ and post an alert ("Alerts drive runs")
  runbook serve --insecure-local --workers 1
  # write a runbook: the format, validation and tests ("Write, validate and test a runbook")
  runbook show disk-full-cleanup
EOF
