// Command notary proves domain ownership over DNS and obtains and renews certificates
// with ACME, handing them to certstore. See docs/architecture.md.
package main

import "github.com/portico-dev/portico/pkg/cmdmain"

func main() { cmdmain.Run(run) }
