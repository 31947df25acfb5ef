package chart

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
)

// Build compiles services/<component> into dir and returns the binary's path.
func Build(ctx context.Context, component, dir string) (string, error) {
	out := filepath.Join(dir, component)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, ".")
	cmd.Dir = filepath.Join(RepoRoot(), "services", component)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %w\n%s", component, err, b)
	}
	return out, nil
}

// Setting is one setting of a service: its flag (also its config file key) and its
// environment variable.
type Setting struct {
	Flag string // without the dash
	Env  string
}

// referenceRow matches a row of -print-config-reference: | `-flag` | `PORTICO_FLAG` | ...
var referenceRow = regexp.MustCompile("^\\| `-([a-z0-9][a-z0-9.-]*)` \\| `(PORTICO_[A-Z0-9_]+)` \\|")

// Settings asks a service binary for its settings (-print-config-reference), the same
// source `make docs` writes docs/configuration.md from.
func Settings(ctx context.Context, binary string) ([]Setting, error) {
	out, err := exec.CommandContext(ctx, binary, "-print-config-reference").Output()
	if err != nil {
		return nil, fmt.Errorf("%s -print-config-reference: %w", binary, err)
	}
	var settings []Setting
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if m := referenceRow.FindStringSubmatch(sc.Text()); m != nil {
			settings = append(settings, Setting{Flag: m[1], Env: m[2]})
		}
	}
	if len(settings) == 0 {
		return nil, fmt.Errorf("%s -print-config-reference listed no settings:\n%s", binary, out)
	}
	return settings, nil
}
