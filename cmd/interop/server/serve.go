package server

import (
	"context"
	"log/slog"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/parley-p2p/parley/cmd/interop/mlsclient"
)

// maxMessage bounds a request: large groups' trees and Welcomes exceed
// gRPC's default of 4 MiB.
const maxMessage = 64 << 20

// Serve runs a new Server on ln until ctx is done, then stops gracefully.
// Failed calls are logged with their method and status.
func Serve(ctx context.Context, ln net.Listener, logger *slog.Logger, opts ...Option) error {
	gs := grpc.NewServer(grpc.UnaryInterceptor(logFailures(logger)), grpc.MaxRecvMsgSize(maxMessage))
	mlsclient.RegisterMLSClientServer(gs, New(opts...))
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		gs.GracefulStop()
	}()
	err := gs.Serve(ln)
	if ctx.Err() != nil {
		<-stopped
		return nil
	}
	gs.Stop()
	return err
}

func logFailures(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		if err != nil && logger != nil {
			st := status.Convert(err)
			logger.Warn("call failed", "rpc", info.FullMethod, "code", st.Code().String(), "err", st.Message())
		}
		return resp, err
	}
}
