package main

import "syscall"

// stopWithParent asks the kernel to send SIGTERM to this process when its parent dies,
// so that `make run` ended by a signal that reaches only make (not the terminal's
// Ctrl-C, which reaches both) still stops everything it started.
func stopWithParent() {
	syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0)
}
