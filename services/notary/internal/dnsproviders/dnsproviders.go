// Package dnsproviders builds lego's DNS providers by their lego names, for operators
// whose delegation zone is hosted by a DNS service they already use (Route 53,
// Cloudflare, Google Cloud DNS, ...). Each provider reads its credentials and settings
// from lego's own environment variables (AWS_*, CF_*, GCE_*, ...), documented with
// lego's providers; the notary passes them through untouched.
//
// lego's by-name constructor (github.com/go-acme/lego/v5/providers/dns) imports every
// one of its 180-odd providers, and one of them depends on a module the Go module proxy
// reachable here does not serve, so that package does not build. This package therefore
// supports a documented set of individual providers, each of which builds and is tested
// to construct from its standard variables (dnsproviders_test.go). Adding one is one
// line in Supported and one test case.
package dnsproviders

import (
	"fmt"
	"slices"
	"strings"

	"github.com/go-acme/lego/v5/challenge"
	"github.com/go-acme/lego/v5/providers/dns/cloudflare"
	"github.com/go-acme/lego/v5/providers/dns/digitalocean"
	"github.com/go-acme/lego/v5/providers/dns/exec"
	"github.com/go-acme/lego/v5/providers/dns/gcloud"
	"github.com/go-acme/lego/v5/providers/dns/godaddy"
	"github.com/go-acme/lego/v5/providers/dns/hetzner"
	"github.com/go-acme/lego/v5/providers/dns/httpreq"
	"github.com/go-acme/lego/v5/providers/dns/ovh"
	"github.com/go-acme/lego/v5/providers/dns/route53"
)

// Supported maps lego's provider names to their constructors, which read lego's
// environment variables.
var Supported = map[string]func() (challenge.Provider, error){
	"cloudflare":   func() (challenge.Provider, error) { return cloudflare.NewDNSProvider() },
	"digitalocean": func() (challenge.Provider, error) { return digitalocean.NewDNSProvider() },
	"exec":         func() (challenge.Provider, error) { return exec.NewDNSProvider() },
	"gcloud":       func() (challenge.Provider, error) { return gcloud.NewDNSProvider() },
	"godaddy":      func() (challenge.Provider, error) { return godaddy.NewDNSProvider() },
	"hetzner":      func() (challenge.Provider, error) { return hetzner.NewDNSProvider() },
	"httpreq":      func() (challenge.Provider, error) { return httpreq.NewDNSProvider() },
	"ovh":          func() (challenge.Provider, error) { return ovh.NewDNSProvider() },
	"route53":      func() (challenge.Provider, error) { return route53.NewDNSProvider() },
}

// Names lists the supported provider names, sorted.
func Names() []string {
	out := make([]string, 0, len(Supported))
	for n := range Supported {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// New builds the provider lego calls name from its environment variables.
func New(name string) (challenge.Provider, error) {
	build, ok := Supported[name]
	if !ok {
		return nil, fmt.Errorf("lego DNS provider %q is not built into the notary (supported: %s)", name, strings.Join(Names(), ", "))
	}
	p, err := build()
	if err != nil {
		return nil, fmt.Errorf("lego DNS provider %s: %w", name, err)
	}
	return p, nil
}
