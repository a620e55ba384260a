#!/usr/bin/env bash
# A scripted session on `chatrec serve` (the scripted fake model): a recommendation accepted with a
# thumbs up, a service answer with a thumbs down, a request for a person; then GET /v1/metrics
# without and with the metrics token. Usage: bash benchmarks/metrics_session.sh > benchmarks/results/metrics_session.txt
set -u
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 CHATREC_LLM__BACKEND=fake CHATREC_SERVE__METRICS_TOKEN=scrape-me
rm -rf "${STATE:-/tmp/chatrec-metrics-session}"
.venv/bin/chatrec --data-dir "${STATE:-/tmp/chatrec-metrics-session}" serve --port 8791 > "${STATE:-/tmp/chatrec-metrics-session}.serve.log" 2>&1 &
PID=$!
for i in $(seq 1 120); do curl -sf localhost:8791/readyz >/dev/null && break; sleep 1; done
chat() { curl -s localhost:8791/v1/chat -H 'content-type: application/json' -d "{\"message\": \"$1\", \"stream\": false${2:+, \"conversation_id\": \"$2\"}}"; }
fb() { curl -s -o /dev/null -w '%{http_code} ' localhost:8791/v1/feedback -H 'content-type: application/json' -d "{\"conversation_id\": \"$1\", \"turn_id\": $2, \"kind\": \"$3\"${4:+, \"item_id\": \"$4\"}}"; }
r=$(chat "Can you recommend wireless earbuds for running?")
cid=$(echo "$r" | .venv/bin/python -c 'import json,sys; d=json.load(sys.stdin); print(d["conversation_id"])')
tid=$(echo "$r" | .venv/bin/python -c 'import json,sys; d=json.load(sys.stdin); print(d["turn_id"])')
item=$(echo "$r" | .venv/bin/python -c 'import json,sys; d=json.load(sys.stdin); print(d["recommendations"][0]["item_id"])')
echo "conversation 1: $cid turn $tid first item $item"
fb "$cid" "$tid" accept "$item"; fb "$cid" "$tid" thumbs_up
r=$(chat "How long does shipping take?")
cid2=$(echo "$r" | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["conversation_id"])')
tid2=$(echo "$r" | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["turn_id"])')
fb "$cid2" "$tid2" thumbs_down
chat "This is useless, I want to talk to a real person now" >/dev/null
echo
echo "--- without the token:"; curl -s -o /dev/null -w '%{http_code}\n' localhost:8791/v1/metrics
echo "--- curl -H 'Authorization: Bearer scrape-me' localhost:8791/v1/metrics"
curl -s -H 'Authorization: Bearer scrape-me' localhost:8791/v1/metrics | grep -v '_bucket'
kill $PID; wait $PID 2>/dev/null
