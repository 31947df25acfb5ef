package handshake

import "crypto/tls"

// cipherSuites are the TLS 1.2 suites offered: ECDHE key exchange with AES-GCM or
// ChaCha20-Poly1305 only, ECDSA certificates first. TLS 1.3 suites are not configurable
// in crypto/tls and are all AEAD.
var cipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// ServerConfig is the TLS configuration of the HTTPS listener: TLS 1.2 and 1.3 only,
// the cipher suites above for 1.2, ALPN h2 then http/1.1, certificates chosen by s, and
// session tickets on or off. With tickets on, crypto/tls makes a random ticket key per
// process and rotates it daily; a ticket is only usable on the replica that issued it.
func ServerConfig(s *Selector, sessionTickets bool) *tls.Config {
	return &tls.Config{
		MinVersion:             tls.VersionTLS12,
		MaxVersion:             tls.VersionTLS13,
		CipherSuites:           cipherSuites,
		NextProtos:             []string{"h2", "http/1.1"},
		GetCertificate:         s.GetCertificate,
		SessionTicketsDisabled: !sessionTickets,
	}
}
