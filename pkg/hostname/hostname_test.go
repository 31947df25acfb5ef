package hostname

import (
	"errors"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name       string
		in         string
		want       string
		registered string
	}{
		{"plain", "shop.example.com", "shop.example.com", "example.com"},
		{"registered domain itself", "example.com", "example.com", "example.com"},
		{"upper case", "SHOP.Example.COM", "shop.example.com", "example.com"},
		{"trailing dot dropped", "shop.example.com.", "shop.example.com", "example.com"},
		{"upper case and trailing dot", "WWW.EXAMPLE.ORG.", "www.example.org", "example.org"},
		{"deep name", "a.b.c.d.example.net", "a.b.c.d.example.net", "example.net"},
		{"digits in labels", "web1.example2.com", "web1.example2.com", "example2.com"},
		{"all-digit inner label", "123.example.com", "123.example.com", "example.com"},
		{"hyphen inside", "my-shop.example.com", "my-shop.example.com", "example.com"},
		{"double hyphen past position four", "abc--d.example.com", "abc--d.example.com", "example.com"},
		{"single character labels", "a.b.co", "a.b.co", "b.co"},
		{"two-level public suffix", "shop.example.co.uk", "shop.example.co.uk", "example.co.uk"},
		{"registered under co.uk", "example.co.uk", "example.co.uk", "example.co.uk"},
		{"com.br", "loja.example.com.br", "loja.example.com.br", "example.com.br"},
		{"private section suffix child", "myapp.github.io", "myapp.github.io", "myapp.github.io"},
		{"below private section child", "www.myapp.github.io", "www.myapp.github.io", "myapp.github.io"},
		{"wildcard TLD rule exception", "www.ck", "www.ck", "www.ck"},
		{"below wildcard TLD rule", "shop.foo.bar.ck", "shop.foo.bar.ck", "foo.bar.ck"},
		{"IDN German", "bücher.example.com", "xn--bcher-kva.example.com", "example.com"},
		{"IDN upper case", "BÜCHER.example.com", "xn--bcher-kva.example.com", "example.com"},
		{"IDN already punycode", "xn--bcher-kva.example.com", "xn--bcher-kva.example.com", "example.com"},
		{"IDN TLD", "пример.рф", "xn--e1afmkfd.xn--p1ai", "xn--e1afmkfd.xn--p1ai"},
		{"IDN TLD punycode", "xn--e1afmkfd.xn--p1ai", "xn--e1afmkfd.xn--p1ai", "xn--e1afmkfd.xn--p1ai"},
		{"IDN Japanese", "例え.jp", "xn--r8jz45g.jp", "xn--r8jz45g.jp"},
		{"sharp s nontransitional", "faß.de", "xn--fa-hia.de", "xn--fa-hia.de"},
		{"full-width letters", "ＳＨＯＰ.example.com", "shop.example.com", "example.com"},
		{"ideographic full stop", "shop。example。com", "shop.example.com", "example.com"},
		{"new gTLD", "shop.example.app", "shop.example.app", "example.app"},
		{"brand TLD", "www.google", "www.google", "www.google"},
		{"label of 63", strings.Repeat("a", 63) + ".example.com", strings.Repeat("a", 63) + ".example.com", "example.com"},
		{"total of 253", longName(253), longName(253), "example.com"},
		{"hex-looking inner label", "0x1f.example.com", "0x1f.example.com", "example.com"},
		{"numeric-looking second-level", "1234.com", "1234.com", "1234.com"},
		{"label starting with digit", "9gag.com", "9gag.com", "9gag.com"},
		{"io TLD", "api.example.io", "api.example.io", "example.io"},
		{"country code", "shop.example.de", "shop.example.de", "example.de"},
		{"onion is ICANN special use but listed", "foo.onion", "foo.onion", "foo.onion"},
		{"mixed ASCII and IDN labels", "www.bücher.de", "www.xn--bcher-kva.de", "xn--bcher-kva.de"},
		{"emoji domain punycode", "xn--ls8h.la", "xn--ls8h.la", "xn--ls8h.la"},
		{"emoji domain unicode", "💩.la", "xn--ls8h.la", "xn--ls8h.la"},
		{"greek final sigma", "ς.gr", "xn--3xa.gr", "xn--3xa.gr"},
		{"long registered label", strings.Repeat("b", 63) + ".com", strings.Repeat("b", 63) + ".com", strings.Repeat("b", 63) + ".com"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.in)
			if err != nil {
				t.Fatalf("Parse(%q) error: %v", tc.in, err)
			}
			if got.ASCII != tc.want || got.Base != tc.want || got.Kind != Exact || got.Registered != tc.registered {
				t.Fatalf("Parse(%q) = %+v, want ASCII %q registered %q", tc.in, got, tc.want, tc.registered)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name string
		in   string
		rule Rule
	}{
		{"empty", "", RuleEmpty},
		{"lone dot", ".", RuleEmpty},
		{"http scheme", "http://example.com", RuleScheme},
		{"https scheme", "https://shop.example.com/", RuleScheme},
		{"user info", "user@example.com", RuleUserInfo},
		{"user and password", "user:pass@example.com", RuleUserInfo},
		{"path", "example.com/path", RulePath},
		{"query", "example.com?x=1", RulePath},
		{"fragment", "example.com#top", RulePath},
		{"backslash", `example.com\evil`, RulePath},
		{"IPv4", "192.0.2.1", RuleIPLiteral},
		{"IPv4 loopback", "127.0.0.1", RuleIPLiteral},
		{"IPv4 with trailing dot", "192.0.2.1.", RuleIPLiteral},
		{"IPv4 short form", "127.1", RuleIPLiteral},
		{"IPv4 decimal", "2130706433", RuleIPLiteral},
		{"IPv4 hex", "0x7f000001", RuleIPLiteral},
		{"IPv4 hex dotted", "0x7f.0x0.0x0.0x1", RuleIPLiteral},
		{"IPv4 octal", "0177.0.0.1", RuleIPLiteral},
		{"IPv4 with port", "192.0.2.1:443", RuleIPLiteral},
		{"IPv6", "2001:db8::1", RuleIPLiteral},
		{"IPv6 loopback", "::1", RuleIPLiteral},
		{"IPv6 bracketed", "[2001:db8::1]", RuleIPLiteral},
		{"IPv6 bracketed with port", "[::1]:443", RuleIPLiteral},
		{"IPv6 with zone", "fe80::1%eth0", RuleIPLiteral},
		{"IPv4-mapped IPv6", "::ffff:192.0.2.1", RuleIPLiteral},
		{"name ending in number", "example.123", RuleIPLiteral},
		{"name ending in hex number", "example.0x1f", RuleIPLiteral},
		{"port", "example.com:443", RulePort},
		{"port 80", "shop.example.com:80", RulePort},
		{"empty port", "example.com:", RuleInvalidCharacter},
		{"colon inside", "exa:mple.com", RuleInvalidCharacter},
		{"wildcard not asked for", "*.example.com", RuleWildcard},
		{"star inside label", "sh*p.example.com", RuleWildcardForm},
		{"star alone", "*", RuleWildcardForm},
		{"star not first", "a.*.example.com", RuleWildcardForm},
		{"too long", longName(254), RuleTooLong},
		{"too long with trailing dot", longName(254) + ".", RuleTooLong},
		{"empty label inside", "shop..example.com", RuleEmptyLabel},
		{"leading dot", ".example.com", RuleEmptyLabel},
		{"two trailing dots", "example.com..", RuleEmptyLabel},
		{"label of 64", strings.Repeat("a", 64) + ".example.com", RuleLabelTooLong},
		{"IDN label too long after punycode", strings.Repeat("ü", 40) + ".example.com", RuleLabelTooLong},
		{"underscore", "_dmarc.example.com", RuleInvalidCharacter},
		{"underscore inside", "my_shop.example.com", RuleInvalidCharacter},
		{"space", "my shop.example.com", RuleInvalidCharacter},
		{"tab", "shop\t.example.com", RuleInvalidCharacter},
		{"NUL", "shop\x00.example.com", RuleInvalidCharacter},
		{"newline", "shop.example.com\n", RuleInvalidCharacter},
		{"quote", `"shop".example.com`, RuleInvalidCharacter},
		{"comma", "a,b.example.com", RuleInvalidCharacter},
		{"semicolon", "a;b.example.com", RuleInvalidCharacter},
		{"percent encoding", "shop%2eexample.com", RuleInvalidCharacter},
		{"plus", "a+b.example.com", RuleInvalidCharacter},
		{"equals", "a=b.example.com", RuleInvalidCharacter},
		{"leading hyphen", "-shop.example.com", RuleHyphen},
		{"trailing hyphen", "shop-.example.com", RuleHyphen},
		{"hyphen-only label", "-.example.com", RuleHyphen},
		{"hyphen on registered label", "example-.com", RuleHyphen},
		{"hyphens in third and fourth", "ab--cd.example.com", RuleIDNA},
		{"bad punycode", "xn--zz.example.com", RuleIDNA},
		{"punycode of ASCII", "xn--abc-.example.com", RuleHyphen},
		{"punycode decoding to invalid", "xn--a.example.com", RuleIDNA},
		{"zero width joiner alone", "\u200d.example.com", RuleIDNA},
		{"no-break space", "a\u00a0b.example.com", RuleIDNA},
		{"bidi rule broken", "aא.example.com", RuleIDNA},
		{"invalid UTF-8", "sh\xffop.example.com", RuleInvalidCharacter},
		{"single label", "localhost", RuleSingleLabel},
		{"single label with dot", "intranet.", RuleSingleLabel},
		{"single label IDN", "bücher", RuleSingleLabel},
		{"TLD alone", "com", RuleSingleLabel},
		{"unknown TLD", "shop.example.invalidtld", RuleUnknownTLD},
		{"test TLD", "shop.bench.test", RuleUnknownTLD},
		{"local TLD", "printer.local", RuleUnknownTLD},
		{"localhost TLD", "app.localhost", RuleUnknownTLD},
		{"example TLD", "www.example", RuleUnknownTLD},
		{"internal TLD", "db.corp.internal", RuleUnknownTLD},
		{"public suffix co.uk", "co.uk", RulePublicSuffix},
		{"public suffix com.br", "com.br", RulePublicSuffix},
		{"public suffix github.io", "github.io", RulePublicSuffix},
		{"public suffix blogspot", "blogspot.com", RulePublicSuffix},
		{"public suffix s3", "s3.amazonaws.com", RulePublicSuffix},
		{"public suffix under wildcard rule", "foo.ck", RulePublicSuffix},
		{"public suffix with trailing dot", "co.uk.", RulePublicSuffix},
		{"public suffix upper case", "CO.UK", RulePublicSuffix},
		{"public suffix IDN", "公司.cn", RulePublicSuffix},
		{"public suffix appspot", "appspot.com", RulePublicSuffix},
		{"public suffix herokuapp", "herokuapp.com", RulePublicSuffix},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want error %s", tc.in, got, tc.rule)
			}
			var herr *Error
			if !errors.As(err, &herr) {
				t.Fatalf("Parse(%q) error %T, want *Error", tc.in, err)
			}
			if herr.Rule != tc.rule {
				t.Fatalf("Parse(%q) rule = %s (%v), want %s", tc.in, herr.Rule, err, tc.rule)
			}
			if herr.Input != tc.in {
				t.Fatalf("error input = %q, want %q", herr.Input, tc.in)
			}
			if !errors.Is(err, &Error{Rule: tc.rule}) {
				t.Fatalf("errors.Is does not match the rule sentinel")
			}
		})
	}
}

func TestPolicyWildcard(t *testing.T) {
	p := Policy{AllowWildcard: true}
	tests := []struct {
		name     string
		in       string
		want     string
		base     string
		kind     Kind
		wantRule Rule
	}{
		{name: "wildcard", in: "*.example.com", want: "*.example.com", base: "example.com", kind: Wildcard},
		{name: "wildcard upper case", in: "*.EXAMPLE.com.", want: "*.example.com", base: "example.com", kind: Wildcard},
		{name: "wildcard below subdomain", in: "*.shop.example.com", want: "*.shop.example.com", base: "shop.example.com", kind: Wildcard},
		{name: "wildcard IDN", in: "*.bücher.de", want: "*.xn--bcher-kva.de", base: "xn--bcher-kva.de", kind: Wildcard},
		{name: "wildcard under private suffix child", in: "*.myapp.github.io", want: "*.myapp.github.io", base: "myapp.github.io", kind: Wildcard},
		{name: "exact still accepted", in: "shop.example.com", want: "shop.example.com", base: "shop.example.com", kind: Exact},
		{name: "wildcard of TLD", in: "*.com", wantRule: RuleSingleLabel},
		{name: "wildcard of public suffix", in: "*.co.uk", wantRule: RulePublicSuffix},
		{name: "wildcard of private suffix", in: "*.github.io", wantRule: RulePublicSuffix},
		{name: "double wildcard", in: "*.*.example.com", wantRule: RuleWildcardForm},
		{name: "partial wildcard", in: "*shop.example.com", wantRule: RuleWildcardForm},
		{name: "wildcard with nothing", in: "*.", wantRule: RuleWildcardForm},
		{name: "wildcard too long", in: "*." + longName(252), wantRule: RuleTooLong},
		{name: "wildcard of IP", in: "*.192.0.2.1", wantRule: RuleIPLiteral},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := p.Parse(tc.in)
			if tc.wantRule != "" {
				if !errors.Is(err, &Error{Rule: tc.wantRule}) {
					t.Fatalf("Parse(%q) = %+v, %v; want rule %s", tc.in, got, err, tc.wantRule)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			if got.ASCII != tc.want || got.Base != tc.base || got.Kind != tc.kind {
				t.Fatalf("Parse(%q) = %+v, want %q base %q kind %v", tc.in, got, tc.want, tc.base, tc.kind)
			}
		})
	}
}

func TestPolicyExtraTLDs(t *testing.T) {
	p := Policy{ExtraTLDs: []string{"test"}}
	got, err := p.Parse("d00001.bench.test")
	if err != nil || got.ASCII != "d00001.bench.test" || got.Registered != "bench.test" {
		t.Fatalf("Parse = %+v, %v; want accepted under extra TLD", got, err)
	}
	if _, err := p.Parse("bench.local"); !errors.Is(err, ErrUnknownTLD) {
		t.Fatalf("other unknown TLDs stay refused, got %v", err)
	}
	if _, err := p.Parse("test"); !errors.Is(err, ErrSingleLabel) {
		t.Fatalf("the extra TLD alone is still a single label, got %v", err)
	}
}

func TestParent(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
		ok   bool
	}{
		{"subdomain", "a.example.com", "*.example.com", true},
		{"deeper", "x.y.example.com", "*.y.example.com", true},
		{"registered domain has no wildcard parent", "example.com", "", false},
		{"under two-level suffix", "example.co.uk", "", false},
		{"child of registered under two-level suffix", "a.example.co.uk", "*.example.co.uk", true},
		{"already wildcard", "*.example.com", "", false},
		{"single label", "localhost", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Parent(tc.in)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("Parent(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// An already-normalized name costs one allocation, inside x/net/publicsuffix (its
// PublicSuffix parses the name as an IP address first, and the failed parse allocates
// an error). Anything more is a regression here.
func TestNormalizeAllocatesOnlyInPublicSuffix(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := Normalize("shop.example.com"); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1 {
		t.Fatalf("Normalize of a normalized name allocated %v times, want at most 1", allocs)
	}
}

func BenchmarkNormalize(b *testing.B) {
	for _, in := range []string{"shop.example.com", "SHOP.Example.com.", "bücher.example.com"} {
		b.Run(in, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Normalize(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzParse checks the invariants every accepted name must hold.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"shop.example.com", "SHOP.example.com.", "bücher.example.com", "*.example.com",
		"xn--bcher-kva.example.com", "127.0.0.1", "[::1]:443", "a..b", "-a.com", "ab--c.com",
		"co.uk", "foo.github.io", "例え.jp", "shop。example。com", "xn--zz.com", "0x7f.1",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, in string, wildcard bool) {
		p := Policy{AllowWildcard: wildcard}
		n, err := p.Parse(in)
		if err != nil {
			var herr *Error
			if !errors.As(err, &herr) || herr.Rule == "" || herr.Input != in {
				t.Fatalf("Parse(%q) error %v is not a complete *Error", in, err)
			}
			return
		}
		// Normalizing twice changes nothing.
		again, err := p.Parse(n.ASCII)
		if err != nil || again != n {
			t.Fatalf("Parse(Parse(%q)=%q) = %+v, %v; want the same name", in, n.ASCII, again, err)
		}
		// The output uses only [a-z0-9.-], after an optional wildcard label.
		body := n.ASCII
		if n.Kind == Wildcard {
			if !wildcard || !strings.HasPrefix(body, "*.") {
				t.Fatalf("wildcard %q accepted without being asked for, or malformed", n.ASCII)
			}
			body = body[2:]
		}
		if body != n.Base {
			t.Fatalf("Base %q does not match ASCII %q", n.Base, n.ASCII)
		}
		for i := 0; i < len(body); i++ {
			c := body[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
				t.Fatalf("Parse(%q) = %q contains %q", in, n.ASCII, c)
			}
		}
		if len(n.ASCII) > MaxLength || !strings.HasSuffix(body, n.Registered) || n.Registered == "" {
			t.Fatalf("Parse(%q) = %+v: bad length or registered domain", in, n)
		}
		// Nothing the IDNA conversion rejected is ever accepted: the input (less the
		// wildcard label and one trailing dot) converts without error, to the same name.
		raw := strings.TrimSuffix(in, ".")
		if n.Kind == Wildcard {
			raw = raw[2:]
		}
		if !utf8.ValidString(raw) {
			t.Fatalf("accepted invalid UTF-8 %q", in)
		}
		ascii, ierr := idna.Lookup.ToASCII(raw)
		if ierr != nil {
			t.Fatalf("Parse(%q) accepted a name IDNA rejects: %v", in, ierr)
		}
		if ascii != body {
			t.Fatalf("Parse(%q) = %q but IDNA gives %q", in, body, ascii)
		}
	})
}

// longName returns a valid name of exactly n characters ending in .example.com.
func longName(n int) string {
	const suffix = ".example.com"
	var b strings.Builder
	for b.Len()+len(suffix) < n {
		remaining := n - len(suffix) - b.Len()
		if b.Len() > 0 {
			if remaining < 2 {
				break
			}
			b.WriteByte('.')
			remaining--
		}
		b.WriteString(strings.Repeat("a", min(remaining, 63)))
	}
	return b.String() + suffix
}

func TestExtraTLDsFlag(t *testing.T) {
	var p Policy
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	p.RegisterFlags(fs)
	if err := fs.Parse([]string{"-hostname-extra-tlds", "Test, internal"}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.ExtraTLDs, []string{"test", "internal"}) {
		t.Fatalf("ExtraTLDs = %q", p.ExtraTLDs)
	}
	if err := fs.Parse([]string{"-hostname-extra-tlds", "a.b"}); err == nil {
		t.Fatal("a dotted TLD must be refused")
	}
}
