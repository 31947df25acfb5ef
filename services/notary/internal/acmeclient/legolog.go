package acmeclient

import (
	"context"
	"log/slog"

	legolog "github.com/go-acme/lego/v5/log"
	"go.uber.org/zap"
)

// RouteLegoLogs sends lego's log (a process-wide slog logger, lego's only option) into
// log: its Info chatter at Debug, warnings and errors as they are. Call once at start.
// Written here rather than taken from go.uber.org/zap/exp/zapslog, which is a separate
// module for a dozen lines.
func RouteLegoLogs(log *zap.Logger) {
	legolog.SetDefault(slog.New(&zapHandler{log: log.Named("lego")}))
}

type zapHandler struct {
	log    *zap.Logger
	fields []zap.Field
}

func (h *zapHandler) level(l slog.Level) zap.AtomicLevel {
	switch {
	case l >= slog.LevelError:
		return zap.NewAtomicLevelAt(zap.ErrorLevel)
	case l >= slog.LevelWarn:
		return zap.NewAtomicLevelAt(zap.WarnLevel)
	}
	return zap.NewAtomicLevelAt(zap.DebugLevel)
}

func (h *zapHandler) Enabled(_ context.Context, l slog.Level) bool {
	return h.log.Core().Enabled(h.level(l).Level())
}

func (h *zapHandler) Handle(_ context.Context, r slog.Record) error {
	fields := append([]zap.Field(nil), h.fields...)
	r.Attrs(func(a slog.Attr) bool {
		fields = append(fields, zap.Any(a.Key, a.Value.Any()))
		return true
	})
	if ce := h.log.Check(h.level(r.Level).Level(), r.Message); ce != nil {
		ce.Write(fields...)
	}
	return nil
}

func (h *zapHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	n := &zapHandler{log: h.log, fields: append([]zap.Field(nil), h.fields...)}
	for _, a := range attrs {
		n.fields = append(n.fields, zap.Any(a.Key, a.Value.Any()))
	}
	return n
}

func (h *zapHandler) WithGroup(name string) slog.Handler {
	return &zapHandler{log: h.log.Named(name), fields: h.fields}
}
