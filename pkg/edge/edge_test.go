package edge_test

import (
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/portico-dev/portico/pkg/config"
	"github.com/portico-dev/portico/pkg/edge"
	"github.com/portico-dev/portico/pkg/hostname"
)

func parse(t *testing.T, args ...string) (edge.Edge, error) {
	t.Helper()
	var f edge.Flags
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	var p config.Problems
	e := f.Validate(&p, hostname.Policy{})
	return e, p.Err()
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		v4, v6  int
		cname   string
		wantErr string
	}{
		{name: "both families", args: []string{"-edge-addresses", "203.0.113.7, 2001:db8::7"}, v4: 1, v6: 1},
		{name: "mapped IPv4 counts as IPv4", args: []string{"-edge-addresses", "::ffff:203.0.113.7"}, v4: 1},
		{name: "loopback for local runs", args: []string{"-edge-addresses", "127.0.0.1"}, v4: 1},
		{name: "cname normalized", args: []string{"-edge-cname", "Edge.Example.NET."}, cname: "edge.example.net"},
		{name: "neither", wantErr: "-edge-addresses"},
		{name: "bad address", args: []string{"-edge-addresses", "not-an-ip"}, wantErr: `"not-an-ip" is not an IP address`},
		{name: "unspecified address", args: []string{"-edge-addresses", "0.0.0.0"}, wantErr: "not unicast"},
		{name: "bad cname", args: []string{"-edge-cname", "localhost"}, wantErr: "-edge-cname"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := parse(t, tc.args...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(e.IPv4()) != tc.v4 || len(e.IPv6()) != tc.v6 || e.CNAME != tc.cname {
				t.Fatalf("edge = %+v (v4 %v, v6 %v)", e, e.IPv4(), e.IPv6())
			}
			for _, a := range e.IPv4() {
				if a != a.Unmap() || !a.Is4() {
					t.Fatalf("IPv4 %v not unmapped", a)
				}
			}
		})
	}
}
