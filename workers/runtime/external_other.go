//go:build !unix

package runtime

import "os/exec"

// killGroup: without process groups, cancellation kills the process only.
func killGroup(*exec.Cmd) {}
