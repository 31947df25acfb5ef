package certcache

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the cache's Prometheus series:
//
//	gateway_cert_cache_hits_total{state="fresh|stale|negative"}
//	gateway_cert_cache_misses_total
//	gateway_cert_cache_evictions_total{cache="positive|negative"}  (by the bounds only)
//	gateway_cert_cache_entries{cache="positive|negative"}
//	gateway_cert_cache_bytes                                        (estimated, positive entries)
type Metrics struct {
	hitFresh, hitStale, hitNegative prometheus.Counter
	misses                          prometheus.Counter
	evictPositive, evictNegative    prometheus.Counter
	entriesPositive                 prometheus.Gauge
	entriesNegative                 prometheus.Gauge
	bytes                           prometheus.Gauge
}

// NewMetrics creates the series and registers them on reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	hits := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_cert_cache_hits_total",
		Help: "Certificate cache lookups answered from the cache, by entry state.",
	}, []string{"state"})
	evictions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_cert_cache_evictions_total",
		Help: "Cache entries evicted to stay within the entry and byte bounds (invalidations are not counted).",
	}, []string{"cache"})
	entries := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "gateway_cert_cache_entries",
		Help: "Entries in the certificate cache.",
	}, []string{"cache"})
	m := &Metrics{
		hitFresh:    hits.WithLabelValues("fresh"),
		hitStale:    hits.WithLabelValues("stale"),
		hitNegative: hits.WithLabelValues("negative"),
		misses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gateway_cert_cache_misses_total",
			Help: "Certificate cache lookups that found nothing usable.",
		}),
		evictPositive:   evictions.WithLabelValues("positive"),
		evictNegative:   evictions.WithLabelValues("negative"),
		entriesPositive: entries.WithLabelValues("positive"),
		entriesNegative: entries.WithLabelValues("negative"),
		bytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gateway_cert_cache_bytes",
			Help: "Estimated memory held by the positive entries of the certificate cache.",
		}),
	}
	if reg != nil {
		reg.MustRegister(hits, evictions, entries, m.misses, m.bytes)
	}
	return m
}
