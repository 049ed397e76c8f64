# Entry points for developers and CI. The scripts do the work; see them for
# options (scripts/test.sh passes ARGS through to go test).
#
# Coffer builds with Go 1.27.3 (go.mod's toolchain line): the go command fetches
# that toolchain from the module proxy on first use. A machine whose go env
# says GOTOOLCHAIN=local ignores that line and would build with its own Go
# (go.mod's go line, 1.26.8, is only the oldest that compiles Coffer, with
# known standard-library vulnerabilities), so every target (and every
# script) sets it. Keep it equal to go.mod's toolchain line.
export GOTOOLCHAIN := go1.27.3

.PHONY: test services services-stop build demo vulncheck bench

test:
	scripts/test.sh $(ARGS)

services:
	scripts/services.sh

services-stop:
	scripts/services.sh stop

# The binary records the git commit it was built from (-buildvcs=auto undoes
# a GOFLAGS=-buildvcs=false in go env) and reports it in `coffer version`;
# `make build VERSION=v1.2.3` also sets the release version (see
# internal/buildinfo), which manifests and drill reports record.
VERSION ?=
build:
	go build -buildvcs=auto $(if $(VERSION),-ldflags "-X github.com/coffer-backup/coffer/internal/buildinfo.version=$(VERSION)") -o bin/coffer ./cmd/coffer

# The walkthrough of the README's "Try it" (ARGS="--dir DIR" to move it).
demo:
	go run ./cmd/coffer demo $(ARGS)

vulncheck:
	scripts/vulncheck.sh $(ARGS)

bench:
	scripts/bench.sh
