//go:build !linux

package main

// stopWithParent is Linux-only (prctl); elsewhere Ctrl-C in the terminal stops make run.
func stopWithParent() {}
