// Command certstore is the only holder of certificates and private keys. Gateways read
// from it (Lookup, Watch); the notary and controlapi write to it. See
// docs/architecture.md.
package main

import "github.com/portico-dev/portico/pkg/cmdmain"

func main() { cmdmain.Run(run) }
