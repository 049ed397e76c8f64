// Package e2e holds end-to-end tests that build the coffer binary and run
// it the way an operator would, against real PostgreSQL, MariaDB and two
// MinIO servers started by scripts/services.sh.
package e2e
