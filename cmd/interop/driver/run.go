package driver

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"google.golang.org/grpc"

	"github.com/parley-p2p/parley/cmd/interop/mlsclient"
)

// Client is a connection to one MLSClient server.
type Client struct {
	RPC    mlsclient.MLSClientClient
	Name   string
	Suites []uint32 // in ascending order
}

// NewClient asks a server for its name and cipher suites.
func NewClient(ctx context.Context, conn grpc.ClientConnInterface) (*Client, error) {
	c := &Client{RPC: mlsclient.NewMLSClientClient(conn)}
	name, err := c.RPC.Name(ctx, &mlsclient.NameRequest{})
	if err != nil {
		return nil, fmt.Errorf("driver: Name: %w", err)
	}
	suites, err := c.RPC.SupportedCiphersuites(ctx, &mlsclient.SupportedCiphersuitesRequest{})
	if err != nil {
		return nil, fmt.Errorf("driver: SupportedCiphersuites: %w", err)
	}
	c.Name, c.Suites = name.Name, slices.Sorted(slices.Values(suites.Ciphersuites))
	return c, nil
}

func (c *Client) supports(cs uint32) bool {
	_, ok := slices.BinarySearch(c.Suites, cs)
	return ok
}

// Run is one run of a script: its cipher suite, handshake mode and the
// server of each actor.
type Run struct {
	Suite   uint32
	Encrypt bool
	Actors  map[string]*Client
}

// StepError reports the step at which a run failed.
type StepError struct {
	Index  int
	Action string
	Err    error
}

func (e *StepError) Error() string { return fmt.Sprintf("step %d (%s): %v", e.Index, e.Action, e.Err) }

func (e *StepError) Unwrap() error { return e.Err }

// ErrMismatch reports members that disagree: on an epoch authenticator, or
// on the content of a decrypted message.
var ErrMismatch = errors.New("driver: members disagree")

// rpcTimeout bounds each call, as the reference runner does.
const rpcTimeout = 2 * time.Minute

// Execute runs the script and returns nil or a *StepError. Every id the
// servers issued during the run is freed at the end.
func (r Run) Execute(ctx context.Context, script Script) error {
	x := &execution{
		Run:     r,
		ctx:     ctx,
		script:  script,
		outputs: make([]map[string][]byte, len(script)),
		stateID: map[string]uint32{},
		txID:    map[string]uint32{},
		signer:  map[string]uint32{},
	}
	for i := range x.outputs {
		x.outputs[i] = map[string][]byte{}
	}
	defer x.freeAll()
	for i, st := range script {
		if err := x.step(i, st); err != nil {
			return &StepError{Index: i, Action: st.Action, Err: err}
		}
	}
	return nil
}

// execution is the state of a running script.
type execution struct {
	Run
	ctx     context.Context
	script  Script
	outputs []map[string][]byte // per step: named outputs
	stateID map[string]uint32
	txID    map[string]uint32
	signer  map[string]uint32
	issued  []issued
}

type issued struct {
	c  *Client
	id uint32
}

func (x *execution) client(actor string) (*Client, error) {
	c, ok := x.Actors[actor]
	if !ok {
		return nil, fmt.Errorf("driver: actor %q has no server", actor)
	}
	return c, nil
}

// call runs one RPC with a timeout.
func call[Req, Resp any](x *execution, f func(context.Context, Req, ...grpc.CallOption) (Resp, error), req Req) (Resp, error) {
	ctx, cancel := context.WithTimeout(x.ctx, rpcTimeout)
	defer cancel()
	return f(ctx, req)
}

// track remembers an id to free at the end.
func (x *execution) track(c *Client, id uint32) uint32 {
	x.issued = append(x.issued, issued{c, id})
	return id
}

func (x *execution) freeAll() {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(x.ctx), rpcTimeout)
	defer cancel()
	for _, is := range x.issued {
		is.c.RPC.Free(ctx, &mlsclient.FreeRequest{StateId: is.id}) // best effort
	}
}

func (x *execution) put(i int, key string, v []byte) { x.outputs[i][key] = v }

func (x *execution) get(i int, key string) ([]byte, error) {
	if i < 0 || i >= len(x.outputs) {
		return nil, fmt.Errorf("driver: step index %d out of range", i)
	}
	v, ok := x.outputs[i][key]
	if !ok {
		return nil, fmt.Errorf("driver: step %d has no %s", i, key)
	}
	return v, nil
}

func (x *execution) gets(idx []int, key string) ([][]byte, error) {
	out := make([][]byte, len(idx))
	for i, j := range idx {
		v, err := x.get(j, key)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// newGroupID returns the id of the script's group, with "++" appended
// when it changes, as the reference runner makes them.
func (x *execution) newGroupID(change bool) ([]byte, error) {
	id, err := x.get(0, "group_id")
	if err != nil {
		return nil, err
	}
	if change {
		id = append(append([]byte(nil), id...), "++"...)
	}
	return id, nil
}

// changeSuite moves the run to the next cipher suite (in numeric order,
// wrapping) that every server of the run supports.
func (x *execution) changeSuite() error {
	var base []uint32
	for _, c := range x.Actors {
		base = c.Suites // the common suites are in any server's list
		break
	}
	var common []uint32
	for _, cs := range base {
		all := true
		for _, c := range x.Actors {
			all = all && c.supports(cs)
		}
		if all && cs != x.Suite {
			common = append(common, cs)
		}
	}
	if len(common) == 0 {
		return errors.New("driver: no other cipher suite is supported by every server")
	}
	next := common[0]
	for _, cs := range common {
		if cs > x.Suite {
			next = cs
			break
		}
	}
	x.Suite = next
	return nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func newGroupID() []byte { return []byte(hex.EncodeToString(randomBytes(16))) }

func agree(who string, got, want []byte) error {
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%w: %s's epoch authenticator", ErrMismatch, who)
	}
	return nil
}

func decode[T any](st Step) (T, error) {
	var p T
	if err := json.Unmarshal(st.raw, &p); err != nil {
		return p, fmt.Errorf("driver: %s parameters: %w", st.Action, err)
	}
	return p, nil
}
