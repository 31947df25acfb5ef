package dynamotest

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel kill dynalite when the test binary dies, so a test run
// that is killed leaves no Node.js process behind.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
