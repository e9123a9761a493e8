package main

import (
	"bufio"
	"context"
	"io"
	"regexp"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/parley-p2p/parley/cmd/interop/mlsclient"
)

func TestServesOnTheGivenAddressUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-host", "127.0.0.1", "-port", "0"}, pw)
		pw.Close()
	}()
	addrRE := regexp.MustCompile(`addr=(\S+)`)
	lines := bufio.NewScanner(pr)
	var addr string
	for addr == "" && lines.Scan() {
		if m := addrRE.FindStringSubmatch(lines.Text()); m != nil {
			addr = m[1]
		}
	}
	if addr == "" {
		t.Fatalf("no address logged (run: %v)", <-done)
	}
	go io.Copy(io.Discard, pr)

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	callCtx, callCancel := context.WithTimeout(ctx, time.Minute)
	defer callCancel()
	name, err := mlsclient.NewMLSClientClient(conn).Name(callCtx, &mlsclient.NameRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if name.Name != "parley" {
		t.Errorf("name %q, want parley", name.Name)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run after cancel: %v", err)
	}
}

func TestBadFlagsAreRejected(t *testing.T) {
	for _, args := range [][]string{
		{"-port", "70000"},
		{"-port", "x"},
		{"-bogus"},
		{"extra"},
		{"-host", "256.0.0.1", "-port", "0"},
	} {
		if err := run(context.Background(), args, io.Discard); err == nil {
			t.Errorf("run %q: no error", args)
		}
	}
}
