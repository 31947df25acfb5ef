package dynamo

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/portico-dev/portico/pkg/config"
	"github.com/portico-dev/portico/pkg/logging"
)

// Command is `<binary> dynamodb create-tables [-tables a,b] [-dynamodb-* flags]`, which
// every service binary offers so that an operator (or the Helm chart's Job) creates the
// tables with any of the images. The -dynamodb-* flags and PORTICO_DYNAMODB_*
// variables are those of the services.
func Command(ctx context.Context, binary string, args []string, out io.Writer) error {
	usage := fmt.Sprintf("usage: %s dynamodb create-tables [-tables %s] [-dynamodb-region R] [-dynamodb-endpoint URL] [-dynamodb-table-prefix P]",
		binary, strings.Join(AllTables(), ","))
	if len(args) == 0 || args[0] != "create-tables" {
		return fmt.Errorf("%s", usage)
	}
	var o Options
	var tables, level string
	fs := flag.NewFlagSet(binary+" dynamodb create-tables", flag.ContinueOnError)
	fs.SetOutput(out)
	o.RegisterFlags(fs)
	fs.StringVar(&tables, "tables", strings.Join(AllTables(), ","), "comma-separated tables to create")
	fs.StringVar(&level, "log-level", "info", "log level")
	if err := config.Parse(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s", usage)
	}
	var p config.Problems
	o.Validate(&p)
	var names []string
	for _, t := range strings.Split(tables, ",") {
		if t = strings.TrimSpace(t); t == "" {
			continue
		}
		if !slices.Contains(AllTables(), t) {
			p.Addf("tables", "%q is not one of %s", t, strings.Join(AllTables(), ", "))
		}
		names = append(names, t)
	}
	if err := p.Err(); err != nil {
		return err
	}
	log, err := logging.New(binary, logging.Options{Level: level, Format: "json"})
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck // best effort at exit
	client, err := o.Open(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if err := CreateTables(ctx, client, o.TablePrefix, log, names...); err != nil {
		return err
	}
	for _, n := range names {
		fmt.Fprintf(out, "DynamoDB table %s%s is active\n", o.TablePrefix, n)
	}
	log.Debug("tables ready", zap.Strings("tables", names))
	return nil
}
