//go:build unix

package snapshot

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts the child in a process group of its own, and makes
// context cancellation kill the whole group (a shell's children included).
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd) }
}

// killNow kills the child and its process group at once.
func killNow(cmd *exec.Cmd) { _ = killGroup(cmd) }

func killGroup(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	// A negative pid names the process group the child leads.
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
		return cmd.Process.Kill()
	}
	return nil
}
