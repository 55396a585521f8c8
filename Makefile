# jetprop — see README.md. `make help` lists the targets.
GO       ?= go
BIN      ?= bin
DATA     ?= ./jetprop-data
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/jetprop/jetprop/cmd/jetprop/app.Version=$(VERSION)
PKGS     := ./...
DEVICES     ?= 1000,5000,10000
DURATION    ?= 60s
TASKS       ?= 2000
ROUNDS      ?= 5
CONCURRENCY ?= 8
HEARTBEAT   ?= 10s
QOS         ?= 0
HEARTBEAT_QOS ?= 0

.PHONY: help build run demo cluster-demo test test-short badinput chaos chaos-cluster bench fleet-bench restart-bench flood-bench invoke-bench propeller-cli propeller-manager rss check fuzz wasm clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-11s %s\n", $$1, $$2}'

build: ## build bin/jetprop and bin/proplet
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/jetprop ./cmd/jetprop
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/proplet ./cmd/proplet

rss: build ## peak RSS of jetprop up while a task grows its memory a page at a time to 256 MiB and 4 GiB (Linux; needs ~4.5 GB free)
	workers/runtime/testdata/rss_up.sh $(BIN)/jetprop 256 4096

run: build ## jetprop up: embedded NATS (JetStream + MQTT), engine, HTTP API on :7070, one local proplet
	$(BIN)/jetprop up --data $(DATA)

demo: build ## start a throwaway stack, run the examples on a local proplet, print the results, stop
	$(BIN)/jetprop demo

cluster-demo: build ## a 3-node cluster of jetprop servers + 3 proplets on loopback (ports BASE+21..83, default BASE=17000): tasks, a node stopped, more tasks, all stopped
	BIN=$(BIN) testing/clusterdemo/cluster-demo.sh

test: ## the whole test suite with the race detector (what CI runs)
	$(GO) test -race -timeout 9m -count=1 $(PKGS)

test-short: ## quick tests without the race detector
	$(GO) test -short -count=1 $(PKGS)

badinput: ## the bad-input regression suite alone (part of make test): API, CLI and device rows against one jetprop up; -v lists the pending rows
	$(GO) test -count=1 -run TestBadInput $(BADINPUT_FLAGS) ./testing/e2e/

chaos: ## kill -9 chaos tests with many random kills (CHAOS_ROUNDS, default 25; WORKFLOW_KILLS, default 8)
	JETPROP_CHAOS_ROUNDS=$${CHAOS_ROUNDS:-25} JETPROP_WORKFLOW_KILLS=$${WORKFLOW_KILLS:-8} $(GO) test -count=1 -v -timeout 30m -run Kill9 ./testing/e2e/

chaos-cluster: ## the cluster chaos test, long: 3 nodes, 2 engine replicas, 3 proplets, kills of leaders, an engine and a proplet (CHAOS_TASKS, default 1000; CHAOS_WORKFLOWS, default 50)
	CHAOS_CLUSTER_TASKS=$${CHAOS_TASKS:-1000} CHAOS_CLUSTER_WORKFLOWS=$${CHAOS_WORKFLOWS:-50} $(GO) test -count=1 -v -timeout 30m -run TestCluster_Chaos ./testing/e2e/

bench: ## benchmarks: event append vs raw publish, replay, deciders, replay check, workflows (1,000-step fan-out, 50-step chain), end-to-end dispatch (plain and TLS), MQTT connects (plain, TLS, mutual TLS), warm wasm call, journal, OCI import, uploads, proxy delivery
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s -count=1 -timeout 30m \
		./events/ ./engine/ ./engine/replaycheck/ ./projections/ ./workers/runtime/ ./workers/journal/ ./cmd/jetprop/app/ ./adapters/oci/ ./adapters/httpapi/client/ ./adapters/mqtt/proxy/ ./adapters/natsserver/

fleet-bench: build ## simulated fleets against fresh `jetprop up` processes, a Markdown table (DEVICES=1000,5000,10000 DURATION=60s TASKS=2000 ROUNDS=5 CONCURRENCY=8 HEARTBEAT=10s QOS=0 HEARTBEAT_QOS=0)
	$(GO) run ./testing/fleetsim/cmd/fleetbench -bin $(BIN)/jetprop -devices $(DEVICES) -duration $(DURATION) \
		-tasks $(TASKS) -rounds $(ROUNDS) -concurrency $(CONCURRENCY) -heartbeat $(HEARTBEAT) -qos $(QOS) -heartbeat-qos $(HEARTBEAT_QOS) $(FLEETBENCH_FLAGS)

flood-bench: ## delay of one device's results (p50, p99) while another floods 10,000 msgs/s over MQTT, against no flood (FLOOD_UNLIMITED=1: without the rate limits, to compare)
	JETPROP_FLOOD_BENCH=1 JETPROP_FLOOD_UNLIMITED=$(FLOOD_UNLIMITED) $(GO) test -count=1 -v -timeout 10m -run 'TestInbound_FloodLatency$$' ./adapters/mqtt/

INVOKES ?= 4000

invoke-bench: ## invokes end to end (HTTP → engine → MQTT → proplet → answer): warm p50/p99 and invokes/s at concurrency 1 and 8 (INVOKES=4000 calls), first-invoke p50/max of 1 KiB, 1 MiB padded and 1 MiB of code
	$(GO) test -count=1 -run '^$$' -bench 'Invoke$$' -benchtime $(INVOKES)x -timeout 10m ./cmd/jetprop/app/

PROPELLER_REPO ?= /work/.mirror/absmach+propeller/repo

propeller-cli: ## build Propeller's own CLI from its sources (PROPELLER_REPO, a git dir) into $(BIN)/propeller-cli, and run it against jetprop (TestPropellerCLI)
	rm -rf $(BIN)/propeller-src && mkdir -p $(BIN)/propeller-src
	git --git-dir=$(PROPELLER_REPO) archive HEAD | tar -x -C $(BIN)/propeller-src
	cd $(BIN)/propeller-src && $(GO) build -o $(abspath $(BIN))/propeller-cli ./cmd/cli
	rm -rf $(BIN)/propeller-src
	PROPELLER_CLI=$(abspath $(BIN))/propeller-cli $(GO) test -count=1 -v -run 'TestPropellerCLI$$' ./adapters/httpapi/

propeller-manager: ## build Propeller's own manager from its sources (PROPELLER_REPO; without cgo, so without its wasm plugins) into $(BIN)/propeller-manager, and run jetprop's proplet under it (TestPropellerManager)
	rm -rf $(BIN)/propeller-src && mkdir -p $(BIN)/propeller-src
	git --git-dir=$(PROPELLER_REPO) archive HEAD | tar -x -C $(BIN)/propeller-src
	cd $(BIN)/propeller-src && CGO_ENABLED=0 $(GO) build -o $(abspath $(BIN))/propeller-manager ./cmd/manager
	rm -rf $(BIN)/propeller-src
	PROPELLER_MANAGER=$(abspath $(BIN))/propeller-manager $(GO) test -count=1 -v -run 'TestPropellerManager$$' ./workers/proplet/

restart-bench: build ## seconds from process start to serving GET /health on data dirs of RESTART_EVENTS events (default 100000,1000000), snapshots off and on
	$(GO) run ./testing/restartbench -bin $(BIN)/jetprop -events $${RESTART_EVENTS:-100000,1000000} -restarts $${RESTARTS:-2}

check: ## gofmt, go vet, go mod tidy with no diff, staticcheck when installed
	@test -z "$$(gofmt -l . | tee /dev/stderr)" || (echo "gofmt: files above need formatting" && exit 1)
	$(GO) vet $(PKGS)
	$(GO) mod tidy -diff
	@if command -v staticcheck >/dev/null; then staticcheck $(PKGS); else echo "staticcheck not installed: skipped"; fi

fuzz: ## run every fuzzer (wire and API decoders, artifact refs, workflow YAML, journal records, inputs) for FUZZTIME each (default 30s), one at a time
	@for d in $$(grep -rl '^func Fuzz' --include='*_test.go' . | xargs -n1 dirname | sort -u); do \
		for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$d/*_test.go | sed 's/func //'); do \
			echo "== $$d $$f"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $${FUZZTIME:-30s} -fuzzminimizetime 5s $$d || exit 1; \
		done; done

wasm: ## rebuild the committed .wasm fixtures from their .wat sources (needs wabt)
	@for f in $$(find examples testing workers -name '*.wat'); do \
		echo "wat2wasm $$f"; wat2wasm $$f -o $${f%.wat}.wasm || exit 1; done

clean: ## remove build output (not the data dir)
	rm -rf $(BIN)
