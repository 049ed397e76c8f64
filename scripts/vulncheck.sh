#!/usr/bin/env bash
# vulncheck.sh: fail on any known vulnerability reachable from Coffer's code
# (in the standard library of the Go that builds it, or in a required
# module), using govulncheck over ./... with an offline database.
#
#   scripts/vulncheck.sh
#   scripts/vulncheck.sh -show verbose     extra arguments go to govulncheck
#
# The database is not a live feed: it is built once, into the tools cache,
# from a pinned version of golang.org/x/vulndb (its data/osv, turned into
# the file database govulncheck reads by vulndb's own cmd/gendb), and its
# date is printed on every run. To take newer data, bump VULNDB_VERSION
# below (the one place it is pinned; see SECURITY.md for how often).
#
# govulncheck reports vulnerabilities in three levels: symbols Coffer's
# code calls (reachable: these fail the build), packages it imports and
# modules it requires whose vulnerable code it does not call (listed with
# -show verbose; they do not fail the build).
#
# Tools and the database live in ${COFFER_TOOLS:-$HOME/.cache/coffer-tools}/:
# govulncheck-<version>-<go version>/ (govulncheck must be built with the
# Go it analyses) and vulndb-<version>/.
set -euo pipefail

# golang.org/x/vulndb's pseudo-version: its timestamp is the data's date.
VULNDB_VERSION=v0.0.0-20261105234957-e22db6528018
GOVULNCHECK_VERSION=v1.9.0

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
# The Go that builds Coffer (go.mod's toolchain line); see the Makefile.
export GOTOOLCHAIN=go1.27.3
TOOLS=${COFFER_TOOLS:-$HOME/.cache/coffer-tools}
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	PATH=/usr/local/go/bin:$PATH
fi

die() {
	printf 'vulncheck.sh: FAILED: %s\n' "$*" >&2
	exit 1
}
command -v go >/dev/null 2>&1 || die "go not found on PATH (install Go first)"
GOVERSION=$(go env GOVERSION) || die "go env GOVERSION (GOTOOLCHAIN=$GOTOOLCHAIN)"

# ------------------------------------------------------------- govulncheck

gvcdir="$TOOLS/govulncheck-$GOVULNCHECK_VERSION-$GOVERSION"
if [ ! -x "$gvcdir/govulncheck" ]; then
	echo "installing golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION with $GOVERSION into $gvcdir"
	mkdir -p "$TOOLS"
	tmp=$(mktemp -d "$TOOLS/.govulncheck-$GOVULNCHECK_VERSION.XXXXXX")
	(cd "$tmp" && GOBIN="$tmp" GOFLAGS=-buildvcs=false go install "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION") ||
		{ rm -rf "$tmp"; die "go install govulncheck@$GOVULNCHECK_VERSION"; }
	rm -rf "$gvcdir"
	mv "$tmp" "$gvcdir"
fi

# ------------------------------------------------------------- database

# vulndb's gendb reads data/osv from a git repository and dates each entry
# by its commits. A fresh repository with one commit dated at the pinned
# version's timestamp gives every entry, and the database, that date.
dbdir="$TOOLS/vulndb-$VULNDB_VERSION"
if [ ! -f "$dbdir/index/db.json" ]; then
	echo "building the vulnerability database from golang.org/x/vulndb@$VULNDB_VERSION into $dbdir"
	command -v git >/dev/null 2>&1 || die "git not found (gendb reads a git repository): install git"
	ts=${VULNDB_VERSION#v0.0.0-}
	ts=${ts%%-*}
	[[ $ts =~ ^[0-9]{14}$ ]] || die "VULNDB_VERSION $VULNDB_VERSION is not a pseudo-version with a timestamp"
	date="${ts:0:4}-${ts:4:2}-${ts:6:2}T${ts:8:2}:${ts:10:2}:${ts:12:2}Z"
	mkdir -p "$TOOLS"
	tmp=$(mktemp -d "$TOOLS/.vulndb-$VULNDB_VERSION.XXXXXX")
	trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
	src=$(cd "$tmp" && go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p') || true
	[ -n "$src" ] && [ -d "$src/data/osv" ] || die "go mod download golang.org/x/vulndb@$VULNDB_VERSION"
	mkdir -p "$tmp/bin" "$tmp/repo/data" "$tmp/db"
	(cd "$tmp" && GOBIN="$tmp/bin" GOFLAGS=-buildvcs=false go install "golang.org/x/vulndb/cmd/gendb@$VULNDB_VERSION") ||
		die "go install golang.org/x/vulndb/cmd/gendb@$VULNDB_VERSION"
	cp -R "$src/data/osv" "$tmp/repo/data/osv"
	chmod -R u+w "$tmp/repo"
	(
		cd "$tmp/repo"
		export GIT_AUTHOR_NAME=vulncheck GIT_AUTHOR_EMAIL=vulncheck@localhost GIT_AUTHOR_DATE=$date
		export GIT_COMMITTER_NAME=vulncheck GIT_COMMITTER_EMAIL=vulncheck@localhost GIT_COMMITTER_DATE=$date
		git init -q
		git add data
		git -c commit.gpgsign=false commit -q -m "golang.org/x/vulndb@$VULNDB_VERSION data/osv"
	) || die "git commit of vulndb's data/osv"
	"$tmp/bin/gendb" -repo "$tmp/repo" -out "$tmp/db/out" || die "gendb"
	[ -f "$tmp/db/out/index/db.json" ] || die "gendb wrote no index/db.json"
	rm -rf "$dbdir"
	mv "$tmp/db/out" "$dbdir"
fi
modified=$(sed -n 's/.*"modified":"\([^"]*\)".*/\1/p' "$dbdir/index/db.json")
entries=$(find "$dbdir/ID" -name '*.json' | wc -l)
echo "vulnerability database: golang.org/x/vulndb@$VULNDB_VERSION, $entries entries as of $modified"
echo "  (a pinned snapshot, not a live feed: newer vulnerabilities are not in it; bump VULNDB_VERSION in scripts/vulncheck.sh)"
echo "govulncheck $GOVULNCHECK_VERSION, $GOVERSION"

# ------------------------------------------------------------- check

status=0
"$gvcdir/govulncheck" -db "file://$dbdir" "$@" ./... || status=$?
case $status in
0) echo "vulncheck: no known vulnerability reachable from Coffer's code" ;;
3) die "govulncheck: a known vulnerability is reachable from Coffer's code (above): raise the module or the Go version (go.mod, GOTOOLCHAIN in the Makefile and scripts/)" ;;
*) die "govulncheck exited $status" ;;
esac
