# The two commands a newcomer needs:
#   make run    build Gatehouse and serve the bundled example app on http://127.0.0.1:8080
#   make test   vet and run every test with the race detector
GO ?= go
LISTEN ?= 127.0.0.1:8080
# The commit, for `gatehouse version` where the build info has none (-buildvcs=false).
COMMIT ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)

.PHONY: build run test bench

build:
	$(GO) build -ldflags "-X main.commit=$(COMMIT)" -o bin/gatehouse ./cmd/gatehouse
	$(GO) build -o examples/hello-go/hello-go ./examples/hello-go

run: build
	./bin/gatehouse serve --listen $(LISTEN) $(if $(filter 0,$(shell id -u)),--allow-root) examples/hello-go

test:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 12m ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./internal/proxy/
