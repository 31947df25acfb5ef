package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/portico-dev/portico/pkg/dynamo"
	certstorev1 "github.com/portico-dev/portico/pkg/gen/portico/certstore/v1"
	"github.com/portico-dev/portico/pkg/grpcserver"
	"github.com/portico-dev/portico/pkg/httpserver"
	"github.com/portico-dev/portico/pkg/logging"
	"github.com/portico-dev/portico/pkg/mtls"
	"github.com/portico-dev/portico/services/certstore/internal/rewrap"
	"github.com/portico-dev/portico/services/certstore/internal/secrets"
	"github.com/portico-dev/portico/services/certstore/internal/secrets/localkek"
	"github.com/portico-dev/portico/services/certstore/internal/server"
	"github.com/portico-dev/portico/services/certstore/internal/store"
	"github.com/portico-dev/portico/services/certstore/internal/watch"
)

// allow says which caller identities may use which service (see package grpcserver).
var allow = map[string][]string{
	"/portico.certstore.v1.CertReadService/":  {"gateway"},
	"/portico.certstore.v1.CertWriteService/": {"notary", "controlapi"},
}

// watchBuffer is how many changes one watcher may lag behind before it is caught up
// from the stream instead of the live feed.
const watchBuffer = 256

func run(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "kek" {
		return kekCommand(args[1:], os.Stdout)
	}
	if len(args) > 0 && args[0] == "dynamodb" {
		return dynamo.Command(ctx, "certstore", args[1:], os.Stdout)
	}
	cfg, err := parseConfig(args)
	if err != nil {
		return err
	}
	log, err := logging.New("certstore", cfg.Log)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck // best effort at exit

	var serverTLS *tls.Config
	if cfg.TLS.Enabled() {
		if serverTLS, err = mtls.ServerConfig(cfg.TLS); err != nil {
			return err
		}
	}
	st, err := openStores(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.close()

	reg := httpserver.NewRegistry()
	backend, checks, err := openSecrets(ctx, cfg.Secrets, log)
	if err != nil {
		return err
	}
	keys, err := secrets.NewCache(backend, log, secrets.CacheOptions{Size: cfg.Secrets.CacheSize, TTL: cfg.Secrets.CacheTTL, Registerer: reg})
	if err != nil {
		return err
	}
	records, changes := st.records, st.changes
	hub := watch.NewHub(changes, log, watchBuffer)
	if err := hub.Register(reg); err != nil {
		return err
	}
	read, write := server.New(server.Deps{
		Store:     records,
		Keys:      keys,
		Changes:   changes,
		Feed:      hub,
		ExtraTLDs: cfg.Hostnames.ExtraTLDs,
		Log:       log,
	})

	srv, err := grpcserver.New(log, grpcserver.Config{
		Listen:       cfg.Listen,
		HealthListen: cfg.HealthListen,
		TLS:          serverTLS,
		Allow:        allow,
		Checks:       append([]grpcserver.Check{st.check}, checks...),
		Registerer:   reg,
	})
	if err != nil {
		return err
	}
	srv.RegisterService(&certstorev1.CertReadService_ServiceDesc, read)
	srv.RegisterService(&certstorev1.CertWriteService_ServiceDesc, write)

	admin, err := httpserver.Listen(cfg.AdminListen, httpserver.AdminHandler(reg, readyProbe(st, checks)))
	if err != nil {
		return err
	}

	log.Info("certstore starting", zap.Stringer("listen", srv.Addr()), zap.Stringer("admin", admin.Addr()),
		zap.String("secrets_backend", backend.Kind()))
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Run(ctx) })
	g.Go(func() error { return admin.Run(ctx) })
	g.Go(func() error { return hub.Run(ctx) })
	if local, ok := backend.(*localkek.Backend); ok {
		g.Go(func() error {
			checkKeyring(ctx, records, local, log)
			if cfg.Secrets.KEKRewrap {
				runRewrap(ctx, records, local, log)
			}
			return nil
		})
	}
	return g.Wait()
}

// openSecrets builds the configured private-key backend and its health checks.
func openSecrets(ctx context.Context, s SecretsConfig, log *zap.Logger) (secrets.Backend, []grpcserver.Check, error) {
	switch s.Backend {
	case "aws":
		b, err := openAWS(ctx, s)
		if err != nil {
			return nil, nil, err
		}
		return b, []grpcserver.Check{{Name: "secrets-manager", Probe: b.Probe}}, nil
	default:
		if s.KEKCreate {
			created, err := localkek.CreateFile(s.KEKFile, time.Now())
			if err != nil {
				return nil, nil, fmt.Errorf("create KEK file: %w", err)
			}
			if created {
				log.Warn("created a new key-encryption key file; back it up: keys stored under it cannot be read without it", zap.String("kek_file", s.KEKFile))
			}
		}
		ring, err := localkek.LoadKeyring(s.KEKFile)
		if err != nil {
			return nil, nil, err
		}
		if fi, err := os.Stat(s.KEKFile); err == nil && fi.Mode().Perm()&0o007 != 0 {
			log.Warn("the KEK file is readable by every user of this machine; make it 0600 or 0440", zap.String("kek_file", s.KEKFile), zap.Stringer("mode", fi.Mode().Perm()))
		}
		log.Info("local secrets backend", zap.String("current_kek", ring.Current()))
		return localkek.New(ring), nil, nil
	}
}

// checkKeyring samples the stored keys once at start (the first page of the expiry
// index) and logs an error naming every KEK they need that -kek-file lacks: a wrong or
// stale keyring file shows at start, not as failing Lookups later.
func checkKeyring(ctx context.Context, records store.Store, local *localkek.Backend, log *zap.Logger) {
	due, _, err := records.ListDue(ctx, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), 100, "")
	if err != nil {
		if ctx.Err() == nil {
			log.Warn("could not sample stored keys to check the keyring", zap.Error(err))
		}
		return
	}
	missing := map[string]string{} // KEK id -> one certificate that needs it
	for _, d := range due {
		c, err := records.GetCertificate(ctx, d.Name)
		if err != nil {
			continue
		}
		if id, err := localkek.KEKID(c.KeyRef); err == nil && !local.Keyring().Has(id) {
			missing[id] = d.Name
		}
	}
	for id, name := range missing {
		log.Error("stored private keys are wrapped by a KEK that -kek-file does not hold: their Lookups will fail; restore that KEK line",
			zap.String("kek_id", id), logging.Hostname(name))
	}
}

func runRewrap(ctx context.Context, records store.Store, rw *localkek.Backend, log *zap.Logger) {
	start := time.Now()
	log.Info("re-wrapping private keys under the current KEK")
	res, err := rewrap.Pass(ctx, records, rw, log)
	fields := []zap.Field{zap.Int("checked", res.Checked), zap.Int("rewrapped", res.Rewrapped), zap.Int("failed", res.Failed), zap.Duration("took", time.Since(start))}
	switch {
	case err != nil && ctx.Err() == nil:
		log.Error("re-wrap pass stopped", append(fields, zap.Error(err))...)
	case err == nil && res.Failed == 0:
		log.Info("re-wrap pass done: every private key is under the current KEK; older KEKs may be retired", fields...)
	case err == nil:
		log.Warn("re-wrap pass done with failures: keep the older KEKs", fields...)
	}
}

// kekCommand is `certstore kek create|rotate -kek-file FILE`.
func kekCommand(args []string, out io.Writer) error {
	usage := "usage: certstore kek create|rotate -kek-file FILE"
	if len(args) == 0 {
		return fmt.Errorf("%s", usage)
	}
	fs := flagSetKEK()
	file := fs.String("kek-file", "", "the keyring file")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *file == "" || fs.NArg() > 0 {
		return fmt.Errorf("%s", usage)
	}
	switch args[0] {
	case "create":
		created, err := localkek.CreateFile(*file, time.Now())
		if err != nil {
			return err
		}
		if created {
			fmt.Fprintf(out, "created %s\n", *file)
		} else {
			fmt.Fprintf(out, "%s exists; left as it is\n", *file)
		}
		return nil
	case "rotate":
		id, err := localkek.Rotate(*file, time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "added KEK %s as the current one in %s; restart certstore with -kek-rewrap, then remove the older lines\n", id, *file)
		return nil
	}
	return fmt.Errorf("%s", usage)
}
