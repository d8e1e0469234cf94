# The project's commands. Each installs what it needs (pinned, cached in ~/.cache/request-mirror) on first use; only
# `make bench` may install a system package (nginx, with consent: see tools/env.sh and the README).
SHELL := bash
.DEFAULT_GOAL := help
RUN := tools/run

.PHONY: help test demo bench bench-smoke fuzz soak generate build tail validate mutate
help: ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# The bench tools (vegeta, the Go responder) are built here too, outside any test timeout, because the suite
# includes the benchmark's smoke run. Never a system package: without nginx the smoke run reports S9 as not run.
# So is the Kubernetes test-bed (kube-apiserver, etcd, helm: several minutes cold, then cached).
test: ## lint, type-check and run every test against real nats-server, Traefik and a Kubernetes API server
	@. tools/env.sh && _rm_bench_tools && _rm_k8s_setup && npm test

# Not part of `make test`: minutes per folder once incremental, much longer on a first run (see the README).
mutate: ## mutation testing of contract/, ingress-tap/, dispatcher/ (StrykerJS) and traefik-plugin/ (Gremlins); score per folder; FOLDERS="contract" for fewer folders, FILES=dispatcher/circuit-breaker.ts for some files of them
	@. tools/env.sh && _rm_setup && GREMLINS_BIN="$$(_rm_go_tool gremlins github.com/go-gremlins/gremlins/cmd/gremlins github.com/go-gremlins/gremlins)" && \
	  GREMLINS_BIN="$$GREMLINS_BIN" node tools/mutate.ts $(if $(FOLDERS),--folders '$(FOLDERS)') $(if $(FILES),--files '$(FILES)')

generate: ## regenerate the JSON Schemas and docs/configuration.md from the zod contract
	@. tools/env.sh && _rm_node_setup && npm run generate

validate: ## check a config file as both services do at start-up: make validate CONFIG=FILE
	@. tools/env.sh && _rm_node_setup && node tools/validate.ts $(if $(CONFIG),--config '$(CONFIG)')

build: ## compile to dist/ for the container image
	@. tools/env.sh && _rm_node_setup && npm run build

bench: ## measure what Request Mirror adds to Traefik's latency (~14–16 min, budget 20; writes docs/benchmarks.md and .json; asks before installing nginx; ONLY=S0,S8 runs those latency scenarios alone, reported under .bench/)
	@. tools/env.sh && _rm_bench_setup && node tools/bench/main.ts $(if $(ONLY),--only $(ONLY),--out docs)

bench-smoke: ## about a minute's run of the benchmark harness at tiny rates; keeps its report and logs in the /tmp/rm-bench-* directory it prints
	@. tools/env.sh && _rm_bench_tools && node tools/bench/main.ts --smoke

# Run before each release (see the README): hostile input at volume; FUZZ_ARGS passes options, e.g. --seed 42.
fuzz: ## 200,000 generated requests and 40,000 events through Traefik, the tap and the dispatcher; checks 2xx, crashes, RSS, accounting (~4 min)
	@. tools/env.sh && _rm_setup && node tools/fuzz/main.ts $(FUZZ_ARGS)

# Run before each release (see the README), like `make fuzz`. Not under /tmp/bench.lock: it judges memory, not time;
# on a shared machine run it as `nice -n 19 make soak`. SOAK_ARGS passes options, e.g. --minutes 20.
soak: ## memory soaks side by side: blackholed dispatcher, tap with NATS down, 1 MiB bodies; plateau and RSS peak per process; writes docs/soak.md (~11 min)
	@. tools/env.sh && _rm_bench_tools && node tools/soak/main.ts $(SOAK_ARGS)

demo: ## run the whole local stack (Traefik, NATS, ingress-tap, dispatcher) and watch mirrored events; Ctrl-C stops it
	@$(RUN) node tools/demo/run.ts

tail: ## print every event published to NATS (request-mirror.requests.>) as it happens, e.g. next to `make demo`
	@. tools/env.sh && _rm_node_setup && node tools/demo/tail.ts
