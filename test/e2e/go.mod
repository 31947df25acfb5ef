module github.com/portico-dev/portico/test/e2e

go 1.26.0

require (
	github.com/portico-dev/portico/examples v0.0.0-00010101000000-000000000000
	github.com/portico-dev/portico/pkg v0.0.0
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/redis/go-redis/v9 v9.23.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20261019180522-ce908d29299b // indirect
	google.golang.org/grpc v1.85.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

replace (
	github.com/portico-dev/portico/examples => ../../examples
	github.com/portico-dev/portico/pkg => ../../pkg
)
