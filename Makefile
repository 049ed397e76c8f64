# Entry points for developers and CI. The scripts do the work; see them for
# options (scripts/test.sh passes ARGS through to go test).

.PHONY: test services services-stop build bench

test:
	scripts/test.sh $(ARGS)

services:
	scripts/services.sh

services-stop:
	scripts/services.sh stop

build:
	go build -o bin/coffer ./cmd/coffer

bench:
	scripts/bench.sh
