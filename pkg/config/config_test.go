package config_test

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/portico-dev/portico/pkg/config"
)

type settings struct {
	addr  string
	count int
}

func flags(s *settings) *flag.FlagSet {
	fs := flag.NewFlagSet("svc", flag.ContinueOnError)
	fs.SetOutput(new(strings.Builder))
	fs.StringVar(&s.addr, "redis-addr", "127.0.0.1:6379", "where Redis is")
	fs.IntVar(&s.count, "page-size", 100, "page size")
	return fs
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPrecedenceFlagsThenEnvThenFile(t *testing.T) {
	file := writeFile(t, "redis-addr: file:1\npage-size: 7\n")
	t.Setenv("PORTICO_REDIS_ADDR", "env:2")

	var s settings
	if err := config.Parse(flags(&s), []string{"-config", file}); err != nil {
		t.Fatal(err)
	}
	if s.addr != "env:2" || s.count != 7 {
		t.Fatalf("env over file: got %+v", s)
	}
	s = settings{}
	if err := config.Parse(flags(&s), []string{"-config", file, "-redis-addr", "flag:3"}); err != nil {
		t.Fatal(err)
	}
	if s.addr != "flag:3" {
		t.Fatalf("flag over env: got %+v", s)
	}
}

func TestStrictness(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		file    string
		args    []string
		wantErr string
	}{
		{name: "unknown key in file", file: "redis-adr: x:1\n", wantErr: `"redis-adr"`},
		{name: "unknown environment variable", env: map[string]string{"PORTICO_REDIS_ADR": "x:1"}, wantErr: "PORTICO_REDIS_ADR"},
		{name: "bad value in environment", env: map[string]string{"PORTICO_PAGE_SIZE": "many"}, wantErr: "PORTICO_PAGE_SIZE"},
		{name: "unknown flag", args: []string{"-nope"}, wantErr: "nope"},
		{name: "stray argument", args: []string{"extra"}, wantErr: "unexpected arguments"},
		{name: "missing file", args: []string{"-config", "/nonexistent/portico.yaml"}, wantErr: "nonexistent"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			args := tc.args
			if tc.file != "" {
				args = append(args, "-config", writeFile(t, tc.file))
			}
			var s settings
			err := config.Parse(flags(&s), args)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one naming %s", err, tc.wantErr)
			}
		})
	}
}

func TestProblemsNameTheFlagAndVariable(t *testing.T) {
	var p config.Problems
	p.CheckListen("listen", "nope")
	p.CheckRequired("redis-addr", " ")
	p.CheckOneOf("log-format", "xml", "json", "console")
	err := p.Err()
	for _, want := range []string{"-listen (PORTICO_LISTEN)", "-redis-addr (PORTICO_REDIS_ADDR): is required", `"xml" is not one of json, console`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not contain %q", err, want)
		}
	}
	if (config.Problems{}).Err() != nil {
		t.Error("no problems must be a nil error")
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:80": true, "[::1]:80": true, "localhost:80": true, "127.8.9.1:1": true,
		"0.0.0.0:80": false, ":80": false, "10.0.0.1:80": false, "example.com:80": false, "nope": false,
	} {
		if got := config.IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestList(t *testing.T) {
	for in, want := range map[string][]string{
		"":                      nil,
		" , ,":                  nil,
		"a":                     {"a"},
		" a , b,,c ":            {"a", "b", "c"},
		"1.1.1.1:53,8.8.8.8:53": {"1.1.1.1:53", "8.8.8.8:53"},
	} {
		if got := config.List(in); !slices.Equal(got, want) {
			t.Errorf("List(%q) = %q, want %q", in, got, want)
		}
	}
}
