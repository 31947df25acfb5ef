// Command gateway is Portico's data plane: it terminates TLS by SNI with certificates
// from certstore and proxies to the platform's upstream. See docs/architecture.md.
package main

import "github.com/portico-dev/portico/pkg/cmdmain"

func main() { cmdmain.Run(run) }
