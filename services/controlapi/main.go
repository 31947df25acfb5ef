// Command controlapi is the control API: tenants, API keys and custom domains over gRPC,
// and the same API as JSON through grpc-gateway. See docs/architecture.md.
package main

import "github.com/portico-dev/portico/pkg/cmdmain"

func main() { cmdmain.Run(run) }
