//go:build unix

package runtime

import (
	"os/exec"
	"syscall"
)

// killGroup starts the process in its own process group and makes context
// cancellation kill the whole group, so children of a wrapper script die
// too.
func killGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
