// Package cmdmain is the few lines every Portico binary's main shares: the first SIGINT or
// SIGTERM cancels the context given to run (a graceful stop), a second one exits at once,
// and an error from run is printed and exits with status 1.
package cmdmain

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// Run calls run with the command-line arguments and a context cancelled by the first
// signal, then exits the process.
func Run(run func(ctx context.Context, args []string) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // the next signal takes the default action: exit now
	}()
	err := run(ctx, os.Args[1:])
	stop()
	switch {
	case err == nil:
		os.Exit(0)
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	default:
		fmt.Fprintf(os.Stderr, "%s: %v\n", os.Args[0], err)
		os.Exit(1)
	}
}
