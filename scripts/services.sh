#!/usr/bin/env bash
# services.sh: make the services Coffer's integration tests need healthy on
# loopback, and write .coffer-test/env describing them.
#
#   scripts/services.sh         ensure everything is installed and running
#   scripts/services.sh stop    stop the two MinIO servers this script started
#
# Safe to run repeatedly: whatever is already healthy is left alone. Works on a
# fresh Debian 12 machine with only Go installed (apt-get installs the rest;
# as root directly, otherwise through sudo). Exits non-zero with a clear
# message when a service cannot be made healthy.
#
# Services:
#   PostgreSQL  127.0.0.1:5432, user postgres, trust auth
#   MariaDB     127.0.0.1:3306, user root, empty password
#   MinIO       "primary" 127.0.0.1:9100 and "offsite" 127.0.0.1:9200
#   CLIs        zstd (Debian), age and age-keygen (go install, pinned)
#   Chromium    headless, for the HTML compliance report's test (Debian)
#
# Tools built with go install live in ${COFFER_TOOLS:-$HOME/.cache/coffer-tools}/<name>-<version>/.
set -euo pipefail

AGE_VERSION=v1.3.1
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
MINIO_USER=coffertest
MINIO_PASSWORD=coffertest-secret-key
PG_URL='postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable'
MARIADB_URL='mysql://root@127.0.0.1:3306/'

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE="$REPO/.coffer-test"
TOOLS=${COFFER_TOOLS:-$HOME/.cache/coffer-tools}
# The Go that builds Coffer (go.mod's toolchain line; see the Makefile); it also
# builds the tools below.
export GOTOOLCHAIN=go1.27.3

say() { printf '%-10s %s\n' "$1:" "$2"; }
die() {
	printf 'services.sh: FAILED: %s\n' "$*" >&2
	exit 1
}

# Root or sudo, for apt-get and system daemons.
if [ "$(id -u)" -eq 0 ]; then
	SUDO=()
elif command -v sudo >/dev/null 2>&1; then
	SUDO=(sudo)
else
	SUDO=(__no_sudo__)
fi
as_root() {
	if [ "${SUDO[0]:-}" = __no_sudo__ ]; then
		die "need root for: $* (run as root or install sudo)"
	fi
	"${SUDO[@]}" "$@"
}

APT_UPDATED=
apt_install() {
	command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install $* by hand"
	if [ -z "$APT_UPDATED" ]; then
		as_root apt-get update -qq >&2 || die "apt-get update failed"
		APT_UPDATED=1
	fi
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2 ||
		die "apt-get install $* failed"
}

# wait_for SECONDS CMD...: run CMD every 0.5 s until it succeeds or time is up.
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.5
	done
}

# http_ok URL: true when GET URL answers 200. Uses curl when present, else
# bash's /dev/tcp (a fresh Debian image has no curl).
http_ok() {
	local url=$1
	if command -v curl >/dev/null 2>&1; then
		curl -fs -o /dev/null --max-time 2 "$url"
		return
	fi
	local rest=${url#http://}
	local hostport=${rest%%/*} path=/${rest#*/}
	timeout 3 bash -c '
		exec 2>/dev/null; exec 3<>"/dev/tcp/${1%:*}/${1##*:}" || exit 1
		printf "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" "$2" "$1" >&3
		IFS= read -r status <&3
		case $status in "HTTP/1."?" 200"*) exit 0 ;; *) exit 1 ;; esac
	' _ "$hostport" "$path"
}

ensure_go() {
	if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
		PATH=/usr/local/go/bin:$PATH
	fi
	command -v go >/dev/null 2>&1 || die "go not found on PATH (install Go first)"
}

# go_tool NAME VERSION PKG BIN...: go install PKG@VERSION into
# $TOOLS/NAME-VERSION unless every BIN is already there. Prints the directory.
go_tool() {
	local name=$1 version=$2 pkg=$3
	shift 3
	local dir="$TOOLS/$name-$version" missing=
	for b in "$@"; do [ -x "$dir/$b" ] || missing=1; done
	if [ -z "$missing" ]; then
		say "$name" "found $version in $dir" >&2
		echo "$dir"
		return
	fi
	say "$name" "installing $pkg@$version into $dir (first time can take minutes)" >&2
	mkdir -p "$TOOLS"
	local tmp
	tmp=$(mktemp -d "$TOOLS/.$name-$version.XXXXXX")
	if ! (cd "$tmp" && GOBIN="$tmp" GOFLAGS=-buildvcs=false go install "$pkg@$version") >&2; then
		rm -rf "$tmp"
		die "go install $pkg@$version failed"
	fi
	for b in "$@"; do [ -x "$tmp/$b" ] || { rm -rf "$tmp"; die "go install $pkg@$version did not produce $b"; }; done
	rm -rf "$dir"
	mv "$tmp" "$dir"
	echo "$dir"
}

# ---------------------------------------------------------------- PostgreSQL

pg_ok() { psql "$PG_URL" -XAtqc 'select 1' 2>/dev/null | grep -qx 1; }

ensure_postgres() {
	if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
		say postgres "not installed: installing with apt-get"
		apt_install postgresql postgresql-client
	fi
	if pg_ok; then
		say postgres "found running on 127.0.0.1:5432"
		return
	fi
	local ver
	ver=$(ls /etc/postgresql | sort -V | tail -n1)
	[ -n "$ver" ] || die "PostgreSQL installed but no cluster in /etc/postgresql"
	if ! pg_lsclusters -h 2>/dev/null | awk -v v="$ver" '$1==v && $2=="main" && $4=="online"' | grep -q .; then
		as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start ||
			die "could not start PostgreSQL $ver/main (see /var/log/postgresql/)"
	fi
	wait_for 30 pg_isready -q -h 127.0.0.1 -p 5432 ||
		die "PostgreSQL $ver/main does not accept connections on 127.0.0.1:5432"
	if ! pg_ok; then
		# Fresh install: peer/scram auth only. Let user postgres in over
		# loopback without a password (test machines only).
		local hba=/etc/postgresql/$ver/main/pg_hba.conf
		if ! as_root grep -q '^# coffer-test' "$hba"; then
			say postgres "allowing trust auth for postgres on 127.0.0.1 and ::1 in $hba"
			as_root sed -i '1i # coffer-test: trust loopback for integration tests\nhost all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust' "$hba"
			as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main reload
			wait_for 10 pg_ok || true
		fi
	fi
	pg_ok || die "PostgreSQL runs but $PG_URL cannot log in (check $hba)"
	say postgres "started $ver/main on 127.0.0.1:5432"
}

# ---------------------------------------------------------------- MariaDB

maria_ok() { mariadb --protocol=tcp -h 127.0.0.1 -P 3306 -uroot -e 'select 1' >/dev/null 2>&1; }
maria_sock_ok() { as_root mariadb -uroot -e 'select 1' >/dev/null 2>&1; }

ensure_mariadb() {
	if [ ! -x /usr/sbin/mariadbd ] || ! command -v mariadb >/dev/null 2>&1; then
		say mariadb "not installed: installing with apt-get"
		apt_install mariadb-server mariadb-client
	fi
	if maria_ok; then
		say mariadb "found running on 127.0.0.1:3306"
		return
	fi
	if [ ! -d /var/lib/mysql/mysql ]; then
		as_root mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null ||
			die "mariadb-install-db failed"
	fi
	as_root install -d -o mysql -g mysql /run/mysqld
	if ! maria_sock_ok; then
		as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql ||
			die "could not start /usr/sbin/mariadbd"
	fi
	if ! wait_for 30 maria_sock_ok && ! wait_for 1 maria_ok; then
		die "MariaDB did not come up (see /var/log/mysql/error.log)"
	fi
	if ! maria_ok; then
		# Fresh install: root uses unix_socket auth only. Allow root with an
		# empty password over loopback TCP as well (test machines only).
		say mariadb "allowing root with empty password over 127.0.0.1/::1"
		as_root mariadb -uroot <<-'SQL' || die "could not configure MariaDB root access"
			ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('');
			CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
			GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
			CREATE USER IF NOT EXISTS 'root'@'::1' IDENTIFIED BY '';
			GRANT ALL PRIVILEGES ON *.* TO 'root'@'::1' WITH GRANT OPTION;
			FLUSH PRIVILEGES;
		SQL
	fi
	wait_for 10 maria_ok || die "MariaDB runs but root cannot log in over 127.0.0.1:3306"
	say mariadb "started on 127.0.0.1:3306"
}

# ---------------------------------------------------------------- zstd

ensure_zstd() {
	if command -v zstd >/dev/null 2>&1; then
		say zstd "found $(command -v zstd)"
		return
	fi
	say zstd "not installed: installing with apt-get"
	apt_install zstd
	command -v zstd >/dev/null 2>&1 || die "zstd still missing after apt-get install"
}

# ---------------------------------------------------------------- Chromium

# Headless Chromium renders the HTML compliance report in package report's
# test (screenshot, DOM, PDF). DejaVu gives it a font without the
# recommended packages.
ensure_chromium() {
	if command -v chromium >/dev/null 2>&1; then
		say chromium "found $(command -v chromium)"
		return
	fi
	say chromium "not installed: installing with apt-get"
	apt_install chromium fonts-dejavu-core
	command -v chromium >/dev/null 2>&1 || die "chromium still missing after apt-get install"
}

# ---------------------------------------------------------------- MinIO

# minio_pid NAME: the pid from NAME's pid file if that process is a live minio.
minio_pid() {
	local pidfile="$STATE/minio-$1.pid" pid
	[ -f "$pidfile" ] || return 1
	pid=$(cat "$pidfile")
	[ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q minio || return 1
	echo "$pid"
}

# start_minio NAME PORT CONSOLE_PORT
start_minio() {
	local name=$1 port=$2 console=$3 pid
	local url="http://127.0.0.1:$port" dir="$STATE/minio-$name"
	local pidfile="$dir.pid" log="$dir.log"
	if http_ok "$url/minio/health/live"; then
		if pid=$(minio_pid "$name"); then
			say "minio-$name" "found running on 127.0.0.1:$port (pid $pid)"
		else
			say "minio-$name" "found something healthy on 127.0.0.1:$port not started by this script; using it"
		fi
		return
	fi
	if pid=$(minio_pid "$name"); then
		# Alive but not healthy: give it a moment, then replace it.
		if wait_for 10 http_ok "$url/minio/health/live"; then
			say "minio-$name" "found running on 127.0.0.1:$port (pid $pid)"
			return
		fi
		kill "$pid" 2>/dev/null || true
		wait_for 10 bash -c "! kill -0 $pid" || kill -9 "$pid" 2>/dev/null || true
	fi
	mkdir -p "$dir"
	chmod 700 "$dir"
	# Tests delete gigabytes; purge MinIO's .trash every minute, not every 5.
	MINIO_ROOT_USER=$MINIO_USER MINIO_ROOT_PASSWORD=$MINIO_PASSWORD MINIO_BROWSER=off MINIO_API_DELETE_CLEANUP_INTERVAL=1m \
		setsid "$MINIO_BIN" server --quiet --address "127.0.0.1:$port" \
		--console-address "127.0.0.1:$console" "$dir" </dev/null >"$log" 2>&1 &
	local pid=$! deadline=$((SECONDS + 60))
	echo "$pid" >"$pidfile"
	until http_ok "$url/minio/health/live"; do
		if ! kill -0 "$pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
			tail -n 20 "$log" >&2 || true
			kill "$pid" 2>/dev/null || true
			rm -f "$pidfile"
			die "MinIO $name did not become healthy on $url (log: $log)"
		fi
		sleep 0.5
	done
	say "minio-$name" "started on 127.0.0.1:$port (pid $(cat "$pidfile"), data $dir, log $log)"
}

stop_minio() {
	local name=$1 pid
	if pid=$(minio_pid "$name"); then
		kill "$pid"
		wait_for 15 bash -c "! kill -0 $pid" || kill -9 "$pid" 2>/dev/null || true
		say "minio-$name" "stopped pid $pid"
	else
		say "minio-$name" "not running (no live pid in $STATE/minio-$name.pid)"
	fi
	rm -f "$STATE/minio-$name.pid"
}

# ---------------------------------------------------------------- main

case ${1:-start} in
stop)
	stop_minio primary
	stop_minio offsite
	exit 0
	;;
start | "") ;;
*) die "usage: $0 [stop]" ;;
esac

mkdir -p "$STATE"
ensure_go
ensure_postgres
ensure_mariadb
ensure_zstd
ensure_chromium
AGE_DIR=$(go_tool age "$AGE_VERSION" filippo.io/age/cmd/... age age-keygen)
MINIO_DIR=$(go_tool minio "$MINIO_VERSION" github.com/minio/minio minio)
MINIO_BIN=$MINIO_DIR/minio
start_minio primary 9100 9101
start_minio offsite 9200 9201

envfile="$STATE/env"
tmp=$(mktemp "$envfile.XXXXXX")
cat >"$tmp" <<EOF
# Written by scripts/services.sh; source it before go test.
export COFFER_TEST_PG='$PG_URL'
export COFFER_TEST_MARIADB='$MARIADB_URL'
export COFFER_TEST_S3_PRIMARY='http://127.0.0.1:9100'
export COFFER_TEST_S3_OFFSITE='http://127.0.0.1:9200'
export COFFER_TEST_S3_ACCESS_KEY='$MINIO_USER'
export COFFER_TEST_S3_SECRET_KEY='$MINIO_PASSWORD'
export COFFER_TEST_MINIO_BIN='$MINIO_BIN'
export COFFER_TEST_BIN='$AGE_DIR'
export PATH='$AGE_DIR:$MINIO_DIR':"\$PATH"
EOF
mv "$tmp" "$envfile"
say env "wrote $envfile"
