// Package logging builds Portico's zap loggers and fixes the field names every service
// uses, so one query finds a hostname's story across gateway, certstore, notary and
// controlapi. Loggers are passed explicitly; there is no global logger.
//
// Security events (a domain verified, a certificate issued, a private key read, a tenant
// key rotated) go through Audit, which marks them `audit=true` with an `event` name.
// Never put a PEM block, a private key or an API key in a field.
package logging

import (
	"flag"
	"fmt"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Field names shared by all services.
const (
	KeyHostname    = "hostname"
	KeyTenantID    = "tenant_id"
	KeyDomainState = "domain_state"
	KeyOrderURL    = "order_url"
	KeyVersion     = "version"
	KeyIdentity    = "identity"
	KeyEvent       = "event"
	KeyAudit       = "audit"
)

// Hostname is the hostname field.
func Hostname(h string) zap.Field { return zap.String(KeyHostname, h) }

// TenantID is the tenant field.
func TenantID(id string) zap.Field { return zap.String(KeyTenantID, id) }

// DomainState is the domain lifecycle state field.
func DomainState(s fmt.Stringer) zap.Field { return zap.Stringer(KeyDomainState, s) }

// OrderURL is the ACME order URL field.
func OrderURL(u string) zap.Field { return zap.String(KeyOrderURL, u) }

// Identity is the authenticated caller field (an mTLS identity or "tenant:<id>").
func Identity(id string) zap.Field { return zap.String(KeyIdentity, id) }

// Audit logs a security event at Info level with audit=true and event=name.
func Audit(log *zap.Logger, event string, fields ...zap.Field) {
	log.Info(event, append([]zap.Field{zap.Bool(KeyAudit, true), zap.String(KeyEvent, event)}, fields...)...)
}

// Options choose the log level and encoding.
type Options struct {
	// Level is debug, info, warn or error.
	Level string
	// Format is json (production) or console (local runs).
	Format string
}

// New builds a logger that writes to stderr, tagged with the service name.
func New(service string, o Options) (*zap.Logger, error) {
	var level zapcore.Level
	if err := level.UnmarshalText([]byte(o.Level)); err != nil {
		return nil, fmt.Errorf("log-level %q: want debug, info, warn or error", o.Level)
	}
	var cfg zap.Config
	switch o.Format {
	case "json", "":
		cfg = zap.NewProductionConfig()
		cfg.EncoderConfig.EncodeTime = zapcore.TimeEncoderOfLayout(time.RFC3339Nano)
	case "console":
		cfg = zap.NewDevelopmentConfig()
		cfg.Development = false
	default:
		return nil, fmt.Errorf("log-format %q: want json or console", o.Format)
	}
	cfg.Level = zap.NewAtomicLevelAt(level)
	cfg.Sampling = nil
	cfg.DisableStacktrace = level > zapcore.DebugLevel
	log, err := cfg.Build()
	if err != nil {
		return nil, fmt.Errorf("build logger: %w", err)
	}
	return log.With(zap.String("service", service)), nil
}

// RegisterFlags adds -log-level and -log-format.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Level, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&o.Format, "log-format", "json", "log encoding: json or console")
}
