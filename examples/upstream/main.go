// Command upstream is the example backend of a local Portico: it answers every request
// with what it received (method, path, Host and the forwarding headers the gateway sets),
// so a new user can see exactly what their own backend will get.
package main

import (
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"sort"
	"strings"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9000", "listen address")
	flag.Parse()
	srv := &http.Server{Addr: *listen, Handler: http.HandlerFunc(echo), ReadHeaderTimeout: 10 * time.Second}
	log.Printf("example upstream listening on %s", *listen)
	log.Fatal(srv.ListenAndServe())
}

// answer is what the upstream saw.
type answer struct {
	Message string            `json:"message"`
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Host    string            `json:"host"`
	Headers map[string]string `json:"forwarded_headers"`
}

func echo(w http.ResponseWriter, r *http.Request) {
	a := answer{
		Message: "hello from the example upstream behind Portico",
		Method:  r.Method,
		Path:    r.URL.RequestURI(),
		Host:    r.Host,
		Headers: map[string]string{},
	}
	names := make([]string, 0, len(r.Header))
	for name := range r.Header {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if strings.HasPrefix(name, "X-Forwarded-") || name == "X-Real-Ip" || name == "Forwarded" {
			a.Headers[name] = strings.Join(r.Header.Values(name), ", ")
		}
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(a) //nolint:errcheck // the client went away
}
