//go:build !unix

package snapshot

import "os/exec"

// setProcessGroup is a no-op where process groups do not exist; context
// cancellation kills the child only.
func setProcessGroup(cmd *exec.Cmd) {}

// killNow kills the child at once.
func killNow(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
}
