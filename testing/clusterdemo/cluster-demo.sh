#!/usr/bin/env bash
# cluster-demo: a 3-node jetprop cluster on loopback (three `jetprop server`
# processes, each a nats-server cluster node and an engine replica, no
# separate nats-server), 3 proplets with failover lists, a few tasks, a node
# stopped and more tasks, then everything stopped. See docs/production.md.
#
#   make cluster-demo                   # builds bin/ first
#   BIN=bin BASE=17000 KEEP=1 testing/clusterdemo/cluster-demo.sh
#
# Ports (BASE, default 17000; each must be free): HTTP BASE+71..73,
# NATS BASE+41..43, MQTT BASE+81..83, routes BASE+21..23. Data in a temp
# dir, removed at the end unless KEEP=1.
set -euo pipefail

BIN=${BIN:-bin}
BASE=${BASE:-17000}
JP="$BIN/jetprop"
DIR=$(mktemp -d "${TMPDIR:-/tmp}/jetprop-cluster-demo.XXXXXX")
PIDS=()

say() { printf '\n== %s\n' "$*"; }

cleanup() {
	say "stopping everything"
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	if [[ "${KEEP:-}" == 1 ]]; then echo "data and logs kept in $DIR"; else rm -rf "$DIR"; fi
}
trap cleanup EXIT

free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for i in 1 2 3; do
	for p in $((BASE + 70 + i)) $((BASE + 40 + i)) $((BASE + 80 + i)) $((BASE + 20 + i)); do
		free "$p" || { echo "port $p is in use: pick other ports with BASE=..." >&2; exit 1; }
	done
done

head -c 32 /dev/urandom | base64 > "$DIR/cluster.secret"
chmod 600 "$DIR/cluster.secret"
ROUTES="127.0.0.1:$((BASE + 21)),127.0.0.1:$((BASE + 22)),127.0.0.1:$((BASE + 23))"
MQTT=("tcp://127.0.0.1:$((BASE + 81))" "tcp://127.0.0.1:$((BASE + 82))" "tcp://127.0.0.1:$((BASE + 83))")
api() { echo "http://127.0.0.1:$((BASE + 70 + $1))"; }

say "starting 3 jetprop server nodes (logs in $DIR/n*.log)"
for i in 1 2 3; do
	"$JP" server --data "$DIR/n$i" --http "127.0.0.1:$((BASE + 70 + i))" \
		--nats-port $((BASE + 40 + i)) --mqtt-port $((BASE + 80 + i)) \
		--server-name "n$i" --cluster-name demo --cluster-listen "127.0.0.1:$((BASE + 20 + i))" \
		--routes "$ROUTES" --cluster-secret-file "$DIR/cluster.secret" --replicas 3 \
		>"$DIR/n$i.log" 2>&1 &
	PIDS+=($!)
done
for i in 1 2 3; do
	for _ in $(seq 1 120); do
		grep -q "^jetprop server .* ready" "$DIR/n$i.log" && break
		kill -0 "${PIDS[$((i - 1))]}" 2>/dev/null || { echo "node n$i exited:"; tail -20 "$DIR/n$i.log"; exit 1; }
		sleep 0.5
	done
	grep -q "^jetprop server .* ready" "$DIR/n$i.log" || { echo "node n$i not ready:"; tail -20 "$DIR/n$i.log"; exit 1; }
done

say "starting 3 proplets, each with every node's MQTT address (its own node first)"
for i in 1 2 3; do
	a=${MQTT[$((i - 1))]} b=${MQTT[$((i % 3))]} c=${MQTT[$(((i + 1) % 3))]}
	PROPLET_MQTT_ADDRESS="$a,$b,$c" PROPLET_TENANT_ID=jetprop PROPLET_CHANNEL_ID=default \
		PROPLET_ENTITY_ID="edge-$i" PROPLET_DATA_DIR="$DIR/edge-$i" "$BIN/proplet" >"$DIR/edge-$i.log" 2>&1 &
	PIDS+=($!)
done
for _ in $(seq 1 60); do
	[[ $("$JP" proplets list --server "$(api 1)" 2>/dev/null | grep -c alive || true) -ge 3 ]] && break
	sleep 0.5
done

say "the cluster"
for i in 1 2 3; do echo "  n$i: http $(api "$i")  mqtt ${MQTT[$((i - 1))]}  data $DIR/n$i"; done
"$JP" proplets list --server "$(api 2)"

run_tasks() { # run_tasks <node...>: one task through each node's API
	for i in "$@"; do
		id=$("$JP" task create --server "$(api "$i")" --name add --file examples/add/add.wasm --inputs "$i,$((i * 10))")
		"$JP" task start --server "$(api "$i")" "$id" >/dev/null
		printf '  via n%s: add %s %s = %s (task %s)\n' "$i" "$i" "$((i * 10))" \
			"$("$JP" task results --server "$(api "$i")" --wait 30s "$id")" "$id"
	done
}

say "tasks through every node's API"
run_tasks 1 2 3

say "stopping node n1; its proplet moves to another node"
kill "${PIDS[0]}"
wait "${PIDS[0]}" 2>/dev/null || true
for _ in $(seq 1 60); do
	[[ $(grep -c "msg=connected" "$DIR/edge-1.log") -ge 2 ]] && break
	sleep 0.25
done
grep -h "msg=connected" "$DIR/edge-1.log" | sed 's/^/  edge-1: /'
run_tasks 2 3
"$JP" proplets list --server "$(api 3)"
