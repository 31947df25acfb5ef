//go:build !linux

package dynamotest

import "os/exec"

// dieWithParent does nothing where the kernel offers no parent-death signal; Main
// stops dynalite at the end of a normal run.
func dieWithParent(*exec.Cmd) {}
