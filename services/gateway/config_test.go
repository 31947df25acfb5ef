package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	c, err := parseConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.CacheTTL != time.Hour || c.CacheNegativeTTL != time.Minute {
		t.Errorf("TTLs %v/%v, want 1h/1m", c.CacheTTL, c.CacheNegativeTTL)
	}
	if c.CacheMaxBytes != 256<<20 || c.MaxHeaderBytes != 64<<10 {
		t.Errorf("sizes %d/%d", c.CacheMaxBytes, c.MaxHeaderBytes)
	}
	if !c.SessionTickets || c.Upstream != "127.0.0.1:9000" || c.NotaryHTTP != "127.0.0.1:8081" {
		t.Errorf("unexpected defaults %+v", c)
	}
	if len(c.TrustedProxies) != 0 || len(c.ProxyProtocolCIDRs) != 0 {
		t.Error("trusting someone by default")
	}
}

func TestConfigParses(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(file, []byte("cache-max-bytes: 1GiB\ntrusted-proxies: 10.0.0.0/8\nhostname-extra-tlds: test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PORTICO_SESSION_TICKETS", "false")
	c, err := parseConfig([]string{"-config", file, "-proxy-protocol-cidrs", "192.0.2.0/24, 198.51.100.7", "-max-header-bytes", "32KiB"})
	if err != nil {
		t.Fatal(err)
	}
	if c.CacheMaxBytes != 1<<30 || c.MaxHeaderBytes != 32<<10 || c.SessionTickets {
		t.Errorf("got bytes %d, header %d, tickets %v", c.CacheMaxBytes, c.MaxHeaderBytes, c.SessionTickets)
	}
	if len(c.TrustedProxies) != 1 || c.TrustedProxies[0] != netip.MustParsePrefix("10.0.0.0/8") {
		t.Errorf("trusted proxies %v", c.TrustedProxies)
	}
	if len(c.ProxyProtocolCIDRs) != 2 || c.ProxyProtocolCIDRs[1] != netip.MustParsePrefix("198.51.100.7/32") {
		t.Errorf("PROXY protocol CIDRs %v", c.ProxyProtocolCIDRs)
	}
	if len(c.Hostnames.ExtraTLDs) != 1 || c.Hostnames.ExtraTLDs[0] != "test" {
		t.Errorf("extra TLDs %v", c.Hostnames.ExtraTLDs)
	}
}

// Every bad value is refused with the name of its flag.
func TestConfigRefusesBadValues(t *testing.T) {
	tests := []struct {
		args     []string
		wantFlag string
	}{
		{[]string{"-upstream", "no-port"}, "-upstream"},
		{[]string{"-upstream", "host:99999"}, "-upstream"},
		{[]string{"-notary-http-addr", ":8081"}, "-notary-http-addr"},
		{[]string{"-redirect-https-port", "0"}, "-redirect-https-port"},
		{[]string{"-cache-max-entries", "0"}, "-cache-max-entries"},
		{[]string{"-cache-max-negative", "-1"}, "-cache-max-negative"},
		{[]string{"-cache-max-bytes", "1KiB"}, "-cache-max-bytes"},
		{[]string{"-cache-max-bytes", "lots"}, "cache-max-bytes"},
		{[]string{"-max-header-bytes", "100"}, "-max-header-bytes"},
		{[]string{"-cache-ttl", "0s"}, "-cache-ttl"},
		{[]string{"-lookup-timeout", "-1s"}, "-lookup-timeout"},
		{[]string{"-max-lookups", "0"}, "-max-lookups"},
		{[]string{"-upstream-max-idle-conns", "0"}, "-upstream-max-idle-conns"},
		{[]string{"-trusted-proxies", "10.0.0.0/40"}, "trusted-proxies"},
		{[]string{"-proxy-protocol-cidrs", "lb.example.com"}, "proxy-protocol-cidrs"},
		{[]string{"-hostname-extra-tlds", "a.b"}, "hostname-extra-tlds"},
		{[]string{"-certstore-addr", "10.0.0.1:9091"}, "-certstore-addr"},
		{[]string{"-http-listen", "nowhere"}, "-http-listen"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, err := parseConfig(tt.args)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.wantFlag) {
				t.Fatalf("error %q does not name %s", err, tt.wantFlag)
			}
		})
	}
}

func TestByteSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
		str     string
	}{
		{in: "65536", want: 65536, str: "64KiB"},
		{in: "64KiB", want: 64 << 10, str: "64KiB"},
		{in: "256 MiB", want: 256 << 20, str: "256MiB"},
		{in: "2GiB", want: 2 << 30, str: "2GiB"},
		{in: "1000", want: 1000, str: "1000B"},
		{in: "1.5GiB", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "10TB", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var b byteSize
			err := b.Set(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if tt.wantErr {
				return
			}
			if int64(b) != tt.want || b.String() != tt.str {
				t.Errorf("got %d (%s), want %d (%s)", int64(b), b.String(), tt.want, tt.str)
			}
		})
	}
}
