package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/framing"
	"github.com/parley-p2p/parley/mls/keyschedule"
	"github.com/parley-p2p/parley/mls/secrettree"
	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/wire"
)

type suiteReport struct {
	ID      uint16 `json:"id"`
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	Error   string `json:"error,omitempty"`
	Elapsed string `json:"elapsed"`
}

func runSuites(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("suites", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: parley suites [-json]\n\nChecks each MLS cipher suite end to end (key schedule, HPKE,\nsignatures, PrivateMessage protection) and lists the result.\n")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	var reports []suiteReport
	failed := 0
	for _, cs := range suite.All {
		if err := ctx.Err(); err != nil {
			return err
		}
		start := time.Now()
		err := selfTest(cs)
		r := suiteReport{ID: uint16(cs), Name: cs.String(), OK: err == nil, Elapsed: time.Since(start).Round(time.Microsecond).String()}
		if err != nil {
			r.Error = err.Error()
			failed++
		}
		reports = append(reports, r)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(reports); err != nil {
			return err
		}
	} else {
		for _, r := range reports {
			status := "ok"
			if !r.OK {
				status = "FAILED: " + r.Error
			}
			fmt.Fprintf(stdout, "0x%04x  %-52s %-10s %s\n", r.ID, r.Name, r.Elapsed, status)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d cipher suites failed their self-test", failed)
	}
	return nil
}

// selfTest runs one epoch of the key schedule and sends one PrivateMessage
// between two members holding the same epoch secrets.
func selfTest(cs suite.CipherSuite) error {
	signer, err := cs.GenerateSignatureKey(nil)
	if err != nil {
		return err
	}
	gc := codec.MustMarshal(&wire.GroupContext{Version: wire.MLS10, CipherSuite: cs, GroupID: []byte("self-test"),
		TreeHash: make([]byte, cs.Nh()), ConfirmedTranscriptHash: make([]byte, cs.Nh())})
	epoch := keyschedule.New(cs, keyschedule.Zero(cs), keyschedule.Zero(cs), keyschedule.Zero(cs), gc)
	defer epoch.Destroy()
	ext, err := epoch.ExternalKey()
	if err != nil {
		return err
	}
	kem, ct, err := cs.EncryptWithLabel(ext.PublicKey(), "self-test", gc, epoch.InitSecret, nil)
	if err != nil {
		return err
	}
	if pt, err := cs.DecryptWithLabel(ext, "self-test", gc, kem, ct); err != nil || !bytes.Equal(pt, epoch.InitSecret) {
		return fmt.Errorf("HPKE round trip failed: %v", err)
	}
	keys := func() *framing.EpochKeys {
		return &framing.EpochKeys{Suite: cs, SenderDataSecret: epoch.SenderDataSecret,
			Tree: secrettree.New(cs, epoch.EncryptionSecret, 2, secrettree.DefaultConfig)}
	}
	content := &wire.FramedContent{GroupID: []byte("self-test"), Sender: wire.MemberSender(1),
		ContentType: wire.ContentApplication, ApplicationData: []byte("hello")}
	sig, err := framing.Sign(cs, signer, wire.WireFormatPrivateMessage, content, gc, nil)
	if err != nil {
		return err
	}
	pm, err := framing.EncryptPrivateMessage(keys(), content, &wire.FramedContentAuthData{Signature: sig}, framing.PadTo(32), nil)
	if err != nil {
		return err
	}
	ac, err := framing.DecryptPrivateMessage(keys(), pm, nil, nil)
	if err != nil {
		return err
	}
	if err := framing.VerifySignature(cs, signer.PublicKey(), ac, gc); err != nil {
		return err
	}
	if !bytes.Equal(ac.Content.ApplicationData, []byte("hello")) {
		return fmt.Errorf("PrivateMessage round trip returned %q", ac.Content.ApplicationData)
	}
	return nil
}
