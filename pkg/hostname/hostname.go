// Package hostname is the one place that decides what a hostname is.
//
// Every service uses it for API input, TLS SNI, the HTTP Host header and storage keys, so
// a name means the same thing everywhere. Parse lowercases, drops one trailing dot,
// converts internationalized names to ASCII with the UTS-46 lookup profile, and refuses
// anything that is not a registrable DNS hostname under an ICANN top-level domain:
// IP literals in any notation, ports, schemes, paths, user info, single labels and the
// public suffixes themselves (both sections of the Public Suffix List). The wildcard form
// `*.<name>` is its own kind, accepted only by a Policy that asks for it.
//
// An error is always an *Error naming the rule that failed; errors.Is matches it
// against the Err* sentinels.
package hostname

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
)

// Limits from RFC 1035 (253 characters in presentation form without the trailing dot).
const (
	MaxLength      = 253
	MaxLabelLength = 63
)

// Kind says whether a Name is one exact hostname or a wildcard.
type Kind uint8

const (
	// Exact is one hostname, such as shop.example.com.
	Exact Kind = iota + 1
	// Wildcard is `*.<base>`: every name exactly one label below base.
	Wildcard
)

func (k Kind) String() string {
	switch k {
	case Exact:
		return "exact"
	case Wildcard:
		return "wildcard"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Name is a normalized hostname.
type Name struct {
	// ASCII is the normalized form: lowercase, punycode, no trailing dot, and `*.` in
	// front for a wildcard. Only [a-z0-9.-] (and the leading `*.`) appear in it.
	ASCII string
	// Kind is Exact or Wildcard.
	Kind Kind
	// Base is the name without the wildcard label (equal to ASCII for Exact).
	Base string
	// Registered is the registered domain (eTLD+1) of Base by the Public Suffix List.
	Registered string
}

// String returns the normalized form.
func (n Name) String() string { return n.ASCII }

// Rule names the check a hostname failed. The values are stable and may be shown to
// API callers.
type Rule string

// The rules, in the order they are checked.
const (
	RuleEmpty            Rule = "empty"
	RuleScheme           Rule = "scheme"
	RuleUserInfo         Rule = "userinfo"
	RulePath             Rule = "path"
	RuleIPLiteral        Rule = "ip-literal"
	RulePort             Rule = "port"
	RuleWildcard         Rule = "wildcard-not-allowed"
	RuleWildcardForm     Rule = "wildcard-form"
	RuleTooLong          Rule = "too-long"
	RuleEmptyLabel       Rule = "empty-label"
	RuleLabelTooLong     Rule = "label-too-long"
	RuleInvalidCharacter Rule = "invalid-character"
	RuleHyphen           Rule = "hyphen"
	RuleIDNA             Rule = "idna"
	RuleSingleLabel      Rule = "single-label"
	RuleUnknownTLD       Rule = "unknown-tld"
	RulePublicSuffix     Rule = "public-suffix"
)

// Error reports why a string is not an acceptable hostname.
type Error struct {
	// Input is the string as given.
	Input string
	// Rule is the check that failed.
	Rule Rule
	// Detail says what was wrong, in words.
	Detail string
}

func (e *Error) Error() string {
	return fmt.Sprintf("hostname %q: %s (%s)", e.Input, e.Detail, e.Rule)
}

// Is matches sentinels by rule, so errors.Is(err, hostname.ErrIPLiteral) works.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Input == "" && t.Rule == e.Rule
}

// Sentinels for errors.Is.
var (
	ErrEmpty            = &Error{Rule: RuleEmpty}
	ErrScheme           = &Error{Rule: RuleScheme}
	ErrUserInfo         = &Error{Rule: RuleUserInfo}
	ErrPath             = &Error{Rule: RulePath}
	ErrIPLiteral        = &Error{Rule: RuleIPLiteral}
	ErrPort             = &Error{Rule: RulePort}
	ErrWildcard         = &Error{Rule: RuleWildcard}
	ErrWildcardForm     = &Error{Rule: RuleWildcardForm}
	ErrTooLong          = &Error{Rule: RuleTooLong}
	ErrEmptyLabel       = &Error{Rule: RuleEmptyLabel}
	ErrLabelTooLong     = &Error{Rule: RuleLabelTooLong}
	ErrInvalidCharacter = &Error{Rule: RuleInvalidCharacter}
	ErrHyphen           = &Error{Rule: RuleHyphen}
	ErrIDNA             = &Error{Rule: RuleIDNA}
	ErrSingleLabel      = &Error{Rule: RuleSingleLabel}
	ErrUnknownTLD       = &Error{Rule: RuleUnknownTLD}
	ErrPublicSuffix     = &Error{Rule: RulePublicSuffix}
)

// Policy decides which kinds of names are accepted. The zero Policy accepts exact
// hostnames under ICANN top-level domains only.
type Policy struct {
	// AllowWildcard accepts `*.<name>` as a Wildcard.
	AllowWildcard bool
	// ExtraTLDs are top-level labels accepted in addition to ICANN's, for private test
	// zones such as "test" (RFC 2606). Lowercase ASCII. Empty in production.
	ExtraTLDs []string
}

// Parse normalizes an exact hostname under the default Policy.
func Parse(s string) (Name, error) { return Policy{}.Parse(s) }

// Normalize returns the normalized form of an exact hostname under the default Policy.
func Normalize(s string) (string, error) {
	n, err := Policy{}.Parse(s)
	return n.ASCII, err
}

// Normalize returns the normalized form of s under p.
func (p Policy) Normalize(s string) (string, error) {
	n, err := p.Parse(s)
	return n.ASCII, err
}

// Parse normalizes s and checks every rule. When s is already a normalized exact
// hostname it returns s itself, without copying.
func (p Policy) Parse(s string) (Name, error) {
	fail := func(rule Rule, format string, args ...any) (Name, error) {
		return Name{}, &Error{Input: s, Rule: rule, Detail: fmt.Sprintf(format, args...)}
	}
	if s == "" {
		return fail(RuleEmpty, "is empty")
	}
	if strings.Contains(s, "://") {
		return fail(RuleScheme, "has a URL scheme; give the hostname alone")
	}
	if strings.ContainsRune(s, '@') {
		return fail(RuleUserInfo, "has user information ('@')")
	}
	if i := strings.IndexAny(s, "/?#\\"); i >= 0 {
		return fail(RulePath, "has a path, query or fragment (%q)", s[i:i+1])
	}
	if s[0] == '[' || isIPAddress(s) {
		return fail(RuleIPLiteral, "is an IP address, not a hostname")
	}
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		if isIPAddress(s[:i]) {
			return fail(RuleIPLiteral, "is an IP address with a port, not a hostname")
		}
		if isPort(s[i+1:]) {
			return fail(RulePort, "has a port (%q); give the hostname alone", s[i:])
		}
		return fail(RuleInvalidCharacter, "contains ':'")
	}

	name := strings.TrimSuffix(s, ".")
	kind := Exact
	if strings.HasPrefix(name, "*.") {
		if !p.AllowWildcard {
			return fail(RuleWildcard, "is a wildcard, which is not accepted here")
		}
		kind = Wildcard
		name = name[2:]
	}
	if strings.ContainsRune(name, '*') {
		return fail(RuleWildcardForm, "may contain '*' only as the whole first label ('*.example.com')")
	}
	if name == "" {
		return fail(RuleEmpty, "has no labels")
	}

	ascii, err := toASCII(name)
	if err != nil {
		return Name{}, &Error{Input: s, Rule: err.Rule, Detail: err.Detail}
	}
	if len(ascii)+2*boolInt(kind == Wildcard) > MaxLength {
		return fail(RuleTooLong, "is longer than %d characters", MaxLength)
	}

	lastDot := strings.LastIndexByte(ascii, '.')
	if looksNumeric(ascii[lastDot+1:]) {
		return fail(RuleIPLiteral, "ends in a number, so it is read as an IP address")
	}
	if lastDot < 0 {
		return fail(RuleSingleLabel, "has a single label; a fully qualified name is needed")
	}
	tld := ascii[lastDot+1:]
	suffix, icann := publicsuffix.PublicSuffix(ascii)
	if !p.knownTLD(tld, suffix, icann) {
		return fail(RuleUnknownTLD, "top-level domain %q is not an ICANN TLD", tld)
	}
	if suffix == ascii {
		return fail(RulePublicSuffix, "is a public suffix; names under it can be claimed, not the suffix itself")
	}
	// The registered domain is the suffix and one more label.
	head := ascii[:len(ascii)-len(suffix)-1]
	registered := ascii[strings.LastIndexByte(head, '.')+1:]

	out := Name{ASCII: ascii, Kind: kind, Base: ascii, Registered: registered}
	if kind == Wildcard {
		out.ASCII = "*." + ascii
	}
	return out, nil
}

// Parent returns the wildcard name one label up: `*.example.com` for `a.example.com`.
// ok is false when that wildcard would not itself be acceptable (its base is a public
// suffix or a single label). name must already be normalized.
func Parent(name string) (wildcard string, ok bool) {
	i := strings.IndexByte(name, '.')
	if i < 0 || strings.HasPrefix(name, "*.") {
		return "", false
	}
	base := name[i+1:]
	if !strings.Contains(base, ".") {
		return "", false
	}
	if suffix, _ := publicsuffix.PublicSuffix(base); suffix == base {
		return "", false
	}
	return "*." + base, true
}

// knownTLD decides from the name's public suffix whether its TLD is an ICANN TLD: an
// ICANN rule matched, or a private-section rule did (those all sit under ICANN TLDs and
// have more than one label). Only the PSL's implicit default rule "*" gives a suffix
// that is a lone label outside the ICANN section: that is an unknown TLD.
func (p Policy) knownTLD(tld, suffix string, icann bool) bool {
	return icann || strings.IndexByte(suffix, '.') >= 0 || slices.Contains(p.ExtraTLDs, tld)
}

// labelError is the error of one failed check inside toASCII; Parse adds the input.
type labelError struct {
	Rule   Rule
	Detail string
}

// toASCII converts name (no trailing dot, no wildcard label) to its normalized ASCII form.
// Names that are already lowercase letters, digits, hyphens and dots and contain no
// label that IDNA treats specially ("xn--", "--" in third and fourth position) take a
// fast path that returns name itself; everything else goes through UTS-46, whose
// errors are always a rejection.
func toASCII(name string) (string, *labelError) {
	if fast, err := checkLDH(name); err != nil || fast {
		return name, err
	}
	if !utf8.ValidString(name) {
		return "", &labelError{RuleInvalidCharacter, "is not valid UTF-8"}
	}
	ascii, err := idna.Lookup.ToASCII(name)
	if err != nil {
		return "", &labelError{RuleIDNA, fmt.Sprintf("is not a valid internationalized name: %v", err)}
	}
	if fast, err := checkLDH(ascii); err != nil {
		return "", err
	} else if !fast && !isPunycodeOnly(ascii) {
		return "", &labelError{RuleInvalidCharacter, "does not convert to letters, digits and hyphens"}
	}
	return ascii, nil
}

// checkLDH checks the label syntax of a lowercase-ASCII candidate. fast is true when
// name is plain LDH that IDNA would return unchanged; it is false (with a nil error)
// when name needs the full conversion (upper case, non-ASCII, or IDNA-special labels).
func checkLDH(name string) (fast bool, err *labelError) {
	fast = true
	start := 0
	for i := 0; i <= len(name); i++ {
		if i < len(name) && name[i] != '.' {
			c := name[i]
			switch {
			case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-':
			case 'A' <= c && c <= 'Z', c >= 0x80:
				fast = false
			default:
				return false, &labelError{RuleInvalidCharacter, fmt.Sprintf("contains %q; only letters, digits and hyphens are allowed", rune(c))}
			}
			continue
		}
		label := name[start:i]
		switch {
		case label == "":
			return false, &labelError{RuleEmptyLabel, "has an empty label"}
		case len(label) > MaxLabelLength:
			return false, &labelError{RuleLabelTooLong, fmt.Sprintf("has a label longer than %d characters", MaxLabelLength)}
		case label[0] == '-' || label[len(label)-1] == '-':
			return false, &labelError{RuleHyphen, fmt.Sprintf("label %q starts or ends with a hyphen", label)}
		case len(label) >= 4 && label[2] == '-' && label[3] == '-':
			fast = false // "xn--" punycode, or reserved: let IDNA decide
		}
		start = i + 1
	}
	return fast, nil
}

// isPunycodeOnly reports whether every label is LDH, allowing "--" in third and fourth
// position (as IDNA's output does for "xn--" labels).
func isPunycodeOnly(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// isIPAddress reports whether s parses as an IPv4 or IPv6 address (with or without a
// zone). Only strings that could be one are parsed, because a failed parse allocates.
func isIPAddress(s string) bool {
	if strings.IndexByte(s, ':') < 0 && strings.Trim(s, "0123456789.") != "" {
		return false
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}

// looksNumeric follows the WHATWG URL standard: a host whose last label is a number
// (decimal, or hex with 0x) is an IPv4 address in some notation, never a hostname.
func looksNumeric(label string) bool {
	if label == "" {
		return false
	}
	if strings.HasPrefix(label, "0x") {
		for _, c := range label[2:] {
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
		return true
	}
	for _, c := range label {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func isPort(s string) bool {
	if s == "" || len(s) > 5 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// RegisterFlags adds -hostname-extra-tlds, a comma-separated list of extra top-level
// labels to accept (for private test zones; empty in production).
func (p *Policy) RegisterFlags(fs *flag.FlagSet) {
	fs.Func("hostname-extra-tlds", "comma-separated top-level labels accepted besides ICANN's, for private test zones such as 'test' (empty in production)", func(v string) error {
		p.ExtraTLDs = nil
		for _, tld := range strings.Split(v, ",") {
			tld = strings.ToLower(strings.TrimSpace(tld))
			if tld == "" {
				continue
			}
			if fast, err := checkLDH(tld); err != nil || !fast || strings.Contains(tld, ".") || looksNumeric(tld) {
				return fmt.Errorf("%q is not a single letters-digits-hyphens label", tld)
			}
			p.ExtraTLDs = append(p.ExtraTLDs, tld)
		}
		return nil
	})
}
