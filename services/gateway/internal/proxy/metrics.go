package proxy

import (
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Indexes of the pre-resolved series, so the request path does no label lookups.
const (
	listenerHTTP = iota
	listenerHTTPS
	numListeners
)

var listenerNames = [numListeners]string{"http", "https"}

const (
	outcomeProxied     = iota // sent to an upstream (whatever it answered)
	outcomeRedirected         // 308 to https://
	outcomeChallenge          // a validation path sent to the notary
	outcomeMisdirected        // 421: Host is not the connection's SNI name
	outcomeUnknownHost        // 404: no certificate or route for the Host
	outcomeUnavailable        // 503: certstore could not be asked
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"proxied", "redirected", "challenge", "misdirected", "unknown_host", "unavailable"}

const (
	targetUpstream = iota
	targetNotary
	numTargets
)

var targetNames = [numTargets]string{"upstream", "notary"}

const (
	failureUnreachable = iota // 502: could not connect
	failureTimeout            // 504: no response headers in time
	failureOther              // 502: anything else (a broken response)
	failureClientGone         // the client left before the answer
	numFailures
)

var failureNames = [numFailures]string{"unreachable", "timeout", "other", "client_gone"}

// metrics are the proxy's series:
//
//	gateway_http_requests_total{listener="http|https", outcome}
//	gateway_upstream_responses_total{target="upstream|notary", code="200|...|error"} (codes outside 100..599 count as error)
//	gateway_upstream_response_seconds{target}         time to response headers
//	gateway_upstream_failures_total{target, reason="unreachable|timeout|other|client_gone"}
type metrics struct {
	requests  [numListeners][numOutcomes]prometheus.Counter
	responses *prometheus.CounterVec
	latency   [numTargets]prometheus.Observer
	failures  [numTargets][numFailures]prometheus.Counter
	// byCode caches the responses series of each status code once seen (index 0 is
	// "error"), so counting a response is one atomic load and no label hashing, and only
	// codes that happened are exported.
	byCode [numTargets][600]atomic.Pointer[prometheus.Counter]
}

// response counts one upstream response (code 0: none came).
func (m *metrics) response(target, code int) {
	if code < 100 || code >= len(statusLabels) {
		code = 0
	}
	if c := m.byCode[target][code].Load(); c != nil {
		(*c).Inc()
		return
	}
	label := "error"
	if code != 0 {
		label = statusLabels[code]
	}
	c := m.responses.WithLabelValues(targetNames[target], label)
	m.byCode[target][code].Store(&c)
	c.Inc()
}

func newMetrics(reg prometheus.Registerer) *metrics {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_http_requests_total",
		Help: "HTTP requests by listener and what the gateway did with them.",
	}, []string{"listener", "outcome"})
	responses := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_upstream_responses_total",
		Help: "Upstream and notary responses by status code ('error' when none came).",
	}, []string{"target", "code"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "gateway_upstream_response_seconds",
		Help:    "Time from sending a request upstream to its response headers (or failure).",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"target"})
	failures := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_upstream_failures_total",
		Help: "Upstream round trips that produced no response, by reason.",
	}, []string{"target", "reason"})
	m := &metrics{responses: responses}
	for l := range numListeners {
		for o := range numOutcomes {
			m.requests[l][o] = requests.WithLabelValues(listenerNames[l], outcomeNames[o])
		}
	}
	for t := range numTargets {
		m.latency[t] = latency.WithLabelValues(targetNames[t])
		for f := range numFailures {
			m.failures[t][f] = failures.WithLabelValues(targetNames[t], failureNames[f])
		}
	}
	if reg != nil {
		reg.MustRegister(requests, responses, latency, failures)
	}
	return m
}

// statusLabels holds the label of every valid status code, so counting a response does
// not format a number.
var statusLabels = func() (l [600]string) {
	for i := 100; i < len(l); i++ {
		l[i] = strconv.Itoa(i)
	}
	return l
}()
