package api

import (
	"github.com/portico-dev/portico/pkg/domains"
	controlv1 "github.com/portico-dev/portico/pkg/gen/portico/control/v1"
)

// records lists every DNS record the customer must publish for d, computed from the
// record and the current edge configuration (so an edge change shows at once):
//
//   - TXT `_verify.<registered domain>` = the tenant's token for that registered domain
//     (one record serves all of the tenant's names under it);
//   - routing: a CNAME to the edge name when one is configured and the name is not a zone
//     apex (a CNAME cannot sit at an apex), otherwise A/AAAA of the edge addresses; an
//     apex with only a CNAME target configured gets the CNAME with a note to use the DNS
//     provider's ALIAS/ANAME (CNAME flattening);
//   - wildcard kinds: the routing records at `*.<base>` as well, and the
//     `_acme-challenge.<base>` CNAME into the delegation zone.
func (s *Service) records(d domains.Domain) []*controlv1.DnsRecord {
	base := d.Hostname
	if d.Kind == domains.KindWildcard {
		base = base[len("*."):]
	}
	out := []*controlv1.DnsRecord{{
		Type:    "TXT",
		Name:    "_verify." + d.RegisteredDomain,
		Value:   d.VerificationToken,
		Purpose: "ownership: proves you control " + d.RegisteredDomain + "; one record serves all your names under it",
	}}
	switch d.Kind {
	case domains.KindWildcard:
		out = append(out, s.routing("*."+base, false)...)
	case domains.KindApexAndWildcard:
		out = append(out, s.routing(base, base == d.RegisteredDomain)...)
		out = append(out, s.routing("*."+base, false)...)
	default:
		out = append(out, s.routing(base, base == d.RegisteredDomain)...)
	}
	if d.Kind != domains.KindExact && d.DelegationLabel != "" && s.cfg.DelegationZone != "" {
		out = append(out, &controlv1.DnsRecord{
			Type:    "CNAME",
			Name:    "_acme-challenge." + base,
			Value:   d.DelegationLabel + "." + s.cfg.DelegationZone,
			Purpose: "delegation: lets the platform answer the DNS-01 challenge of the wildcard certificate",
		})
	}
	return out
}

func (s *Service) routing(name string, apex bool) []*controlv1.DnsRecord {
	e := s.cfg.Edge
	hasAddrs := len(e.Addresses) > 0
	if e.CNAME != "" && (!apex || !hasAddrs) {
		purpose := "routing: sends traffic for " + name + " to the platform's edge"
		if apex {
			purpose += "; at a zone apex use your DNS provider's ALIAS/ANAME (CNAME flattening) record"
		}
		return []*controlv1.DnsRecord{{Type: "CNAME", Name: name, Value: e.CNAME, Purpose: purpose}}
	}
	var out []*controlv1.DnsRecord
	for _, a := range e.IPv4() {
		out = append(out, &controlv1.DnsRecord{Type: "A", Name: name, Value: a.String(), Purpose: "routing: sends IPv4 traffic for " + name + " to the platform's edge"})
	}
	for _, a := range e.IPv6() {
		out = append(out, &controlv1.DnsRecord{Type: "AAAA", Name: name, Value: a.String(), Purpose: "routing: sends IPv6 traffic for " + name + " to the platform's edge"})
	}
	return out
}
