// Package mlsclient holds the gRPC service of the MLS interop test framework
// (mls_client.proto, copied unchanged from the mlswg/mls-implementations
// repository) and the Go code generated from it. The generated files are
// committed so that building needs no protoc.
//
// To regenerate, with protoc (Debian: protobuf-compiler) and the plugins
// google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12 and
// google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2 on PATH, run
// go generate ./cmd/interop/mlsclient/
package mlsclient

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go_opt=Mmls_client.proto=github.com/parley-p2p/parley/cmd/interop/mlsclient;mlsclient --go-grpc_out=. --go-grpc_opt=paths=source_relative --go-grpc_opt=Mmls_client.proto=github.com/parley-p2p/parley/cmd/interop/mlsclient;mlsclient mls_client.proto
