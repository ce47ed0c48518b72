#!/usr/bin/env bash
# The operator's kit (deploy/prometheus/, deploy/grafana/) without a
# Prometheus or Grafana server:
#   - the alert rules parse (`promtool check rules`) and behave: `promtool
#     test rules` feeds each alert a sick and a healthy instance;
#   - every dashboard query is valid PromQL: each panel's expression, with
#     Grafana's variables replaced, goes through `promtool check rules` as a
#     recording rule;
#   - that the queries name series semsearch exposes, with the label values
#     they select, is checked against a live server by tests/api/operations.rs
#     (part of `cargo test`).
# Each check is also shown a broken input it must reject. promtool is
# Debian's `prometheus` package, installed here when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v promtool >/dev/null 2>&1; then
  echo "observability: installing promtool (Debian package prometheus)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq prometheus >/dev/null
fi
work="$(mktemp -d -t semsearch-observability.XXXXXX)"
trap 'rm -rf "$work"' EXIT

echo "observability: promtool check rules, promtool test rules (deploy/prometheus/)"
promtool check rules deploy/prometheus/semsearch.rules.yaml
promtool test rules deploy/prometheus/semsearch.rules.test.yaml

# Grafana's variables, replaced as Grafana would: a rate window and the
# "All" regex of the job and instance variables.
dashboard_rules() {
  python3 - "$1" <<'PY'
import json, sys
dashboard = json.load(open(sys.argv[1]))
print("groups:\n  - name: dashboard\n    rules:")
for panel in dashboard["panels"]:
    for target in panel.get("targets", []):
        expr = (target["expr"].replace("$__rate_interval", "5m")
                .replace("$job", ".*").replace("$instance", ".*"))
        print(f"      - record: dashboard:panel_{panel['id']}_{target['refId']}")
        print(f"        expr: {json.dumps(expr)}")
PY
}
echo "observability: every query of deploy/grafana/semsearch.json is PromQL (promtool check rules)"
dashboard_rules deploy/grafana/semsearch.json > "$work/dashboard.rules.yaml"
promtool check rules "$work/dashboard.rules.yaml"

echo "observability: each check rejects a broken input"
sed 's/"expr": "sum(rate(http_requests_total/"expr": "sum(rate(http_requests_total[/' deploy/grafana/semsearch.json > "$work/bad.json"
if cmp -s deploy/grafana/semsearch.json "$work/bad.json"; then
  echo "observability: could not break the dashboard (the Request rate panel's query changed?)" >&2
  exit 1
fi
dashboard_rules "$work/bad.json" > "$work/bad-dashboard.rules.yaml"
if promtool check rules "$work/bad-dashboard.rules.yaml" >"$work/check.out" 2>&1; then
  echo "observability: promtool accepted a dashboard query with an unclosed bracket" >&2
  exit 1
fi
cp deploy/prometheus/semsearch.rules.yaml deploy/prometheus/semsearch.rules.test.yaml "$work/"
sed -i 's/expr: semsearch_ready == 0/expr: semsearch_ready == 1/' "$work/semsearch.rules.yaml"
if promtool test rules "$work/semsearch.rules.test.yaml" >"$work/test.out" 2>&1; then
  echo "observability: promtool test rules passed an alert that fires on healthy instances" >&2
  exit 1
fi
echo "observability: ok"
