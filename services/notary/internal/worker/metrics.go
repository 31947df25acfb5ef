package worker

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the notary's own Prometheus metrics.
type Metrics struct {
	ordersStarted   *prometheus.CounterVec
	ordersSucceeded *prometheus.CounterVec
	ordersFailed    *prometheus.CounterVec
	verifications   *prometheus.CounterVec
	timeToActive    prometheus.Histogram
	budgetUsed      *prometheus.GaugeVec
}

// NewMetrics registers the metrics with reg (nil: not exported, still counted).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		ordersStarted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "notary_orders_started_total", Help: "ACME orders placed, by kind (issue, renew).",
		}, []string{"kind"}),
		ordersSucceeded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "notary_orders_succeeded_total", Help: "ACME orders that ended with a stored certificate, by kind.",
		}, []string{"kind"}),
		ordersFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "notary_orders_failed_total", Help: "ACME orders that failed, by reason (rate_limited, connection, caa, network, ...).",
		}, []string{"reason"}),
		verifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "notary_verification_attempts_total", Help: "Ownership (TXT) checks, by result: verified, failed, indeterminate.",
		}, []string{"result"}),
		timeToActive: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "notary_time_to_active_seconds",
			Help:    "Time from a domain's creation to its first ACTIVE.",
			Buckets: []float64{5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600, 7 * 24 * 3600},
		}),
		budgetUsed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "notary_ca_rate_limit_budget_used",
			Help: "Share of the CA's rate limits used (0 to 1): window=orders_3h (new orders per account per 3 h), window=certificates_7d (certificates per registered domain per 7 days, the fullest domain last seen).",
		}, []string{"window"}),
	}
	if reg != nil {
		reg.MustRegister(m.ordersStarted, m.ordersSucceeded, m.ordersFailed, m.verifications, m.timeToActive, m.budgetUsed)
	}
	return m
}
