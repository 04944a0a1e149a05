# The two commands the README promises: `make dev` and `make test`.
GO ?= go

STATICCHECK = honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: dev test build deps deps-run bench bench-wrk bench-move bench-report bench-conns lint

deps:
	@scripts/install-deps.sh

# What running the platform needs, no more: PostgreSQL and the Go modules.
deps-run:
	@scripts/install-deps.sh run

build:
	$(GO) build -o bin/pwb ./cmd/pwb

dev: deps-run build
	./bin/pwb dev

test: deps lint
	$(GO) test -count=1 -timeout 20m ./...

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# Benchmarks whose figures are quoted in docs/benchmarks.md.
bench: deps
	$(GO) test -run '^$$' -bench 'MigrateShards' -benchtime 5x -timeout 60m ./internal/migrations/
	$(GO) test -run '^$$' -bench 'Cache|ResolveTenant' -count 5 ./internal/registry/ ./internal/web/

# wrk against a tenant's home page, routed versus bound straight to its shard.
bench-wrk: deps
	PWB_BENCH_WRK=1 $(GO) test -count=1 -v -run 'TestWrk_RoutedVersusDirectHomePage' -timeout 30m ./internal/web/

# A tenant of over a million rows moved between two servers, versus a raw psql pipe.
bench-move: deps
	PWB_BENCH_MOVE=1 $(GO) test ./internal/mover -run TestBench_MoveVersusRawPipe -count=1 -v -timeout 60m

# The same size of tenant moved online and frozen, alternately and back and forth, under a steady write load through pwb serve.
.PHONY: bench-online
bench-online: deps
	PWB_BENCH_ONLINE=1 $(GO) test ./internal/cli -run TestBench_OnlineVersusFreezeMove -count=1 -v -timeout 60m

# `pwb report totals`' fan-out over 20 shards, one slowed, versus that shard alone and a sequential loop.
bench-report: deps
	PWB_BENCH_REPORT=1 $(GO) test ./internal/report -run TestBench_ReportFanOut -count=1 -v -timeout 30m

# The platform admin's screenshots in the README (docs/screenshots/*.png), taken by its browser tests.
.PHONY: screenshots
screenshots: deps
	PWB_SCREENSHOTS=$(CURDIR)/docs/screenshots $(GO) test ./internal/web -run '^TestBrowser_Ops(MigrateTenant|ShardDown)$$' -count=1 -v -timeout 10m

# One process serving 100 shards: connections and requests per second, capped at 30 versus uncapped.
bench-conns: deps
	PWB_BENCH_CONNS=1 $(GO) test ./internal/web -run TestBench_ConnectionsCappedVersusUncapped -count=1 -v -timeout 30m

# The commands and the dashboard that visit every shard, at 100, 300 and 1,000 shard databases on two servers.
.PHONY: bench-shards
bench-shards: deps
	PWB_BENCH_SHARDS=1 $(GO) test ./internal/cli -run TestBench_ThousandShards -count=1 -v -timeout 60m
