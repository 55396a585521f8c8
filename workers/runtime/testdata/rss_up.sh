#!/bin/sh
# rss_up.sh measures what a task growing its memory a page at a time costs
# `jetprop up` (embedded NATS, engine, API and one proplet in one process):
# for each cap in MiB, its resident memory before the task, the peak while
# it runs (VmHWM, reset first) and after it ended.
#
#   make rss                     # caps 256 and 4096
#   workers/runtime/testdata/rss_up.sh bin/jetprop 256 4096
#
# Linux only (/proc). The module is testing/wasmfixtures/growloop.wasm: its
# export run grows the memory one page at a time until memory.grow fails,
# writing every 4 KiB page, and returns the size in pages.
set -eu
bin=$1; shift
module=$(dirname "$0")/../../../testing/wasmfixtures/growloop.wasm
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
server=http://127.0.0.1:$port
"$bin" up --data "$dir" --http 127.0.0.1:$port --nats-port -1 --mqtt-port -1 --log-level warn >"$dir/up.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
kib() { awk -v k="$1:" '$1 == k { print int($2 / 1024) }' /proc/$pid/status; }
until "$bin" proplets list --server "$server" 2>/dev/null | grep -q alive; do sleep 0.2; done
"$bin" run --server "$server" "$module" grow >/dev/null # warm: compile once
sleep 1
for mib in "$@"; do
	echo 5 > /proc/$pid/clear_refs
	before=$(kib VmRSS)
	start=$(date +%s.%N)
	result=$("$bin" run --server "$server" --memory "$mib" "$module" run 2>&1 || true)
	took=$(echo "$(date +%s.%N) - $start" | bc)
	peak=$(kib VmHWM)
	sleep 1
	after=$(kib VmRSS)
	printf 'cap %5d MiB: result %s in %.2fs; RSS before %d MiB, peak %d MiB, 1 s after %d MiB\n' \
		"$mib" "$result" "$took" "$before" "$peak" "$after"
done
