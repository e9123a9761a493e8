package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/parley-p2p/parley/cmd/node/api"
	"github.com/parley-p2p/parley/cmd/node/api/apitest"
)

// TestMalformedRequestsGetClearErrors sends bad lines on one connection
// and checks each gets the right code, and that the connection still
// serves a good request after them.
func TestMalformedRequestsGetClearErrors(t *testing.T) {
	b := apitest.New()
	if _, err := b.CreateGroup(context.Background(), "friends"); err != nil {
		t.Fatal(err)
	}
	_, path := serveUnix(t, b)
	c := dialRaw(t, "unix", path)
	tests := []struct {
		line     string
		id       uint64
		code     string
		inMesage string
	}{
		{`not json`, 0, "bad_request", "malformed JSON"},
		{`{"id":1,"method":"groups"`, 0, "bad_request", "incomplete JSON"},
		{`{"id":2}`, 2, "bad_request", "no method"},
		{`{"id":3,"method":"groups"} {"id":4}`, 3, "bad_request", "after the JSON value"},
		{`{"id":5,"method":"groups","extra":true}`, 5, "bad_request", "unknown field"},
		{`{"id":-6,"method":"groups"}`, 0, "bad_request", "id"},
		{`{"id":"seven","method":"groups"}`, 0, "bad_request", "id"},
		{`[1,2,3]`, 0, "bad_request", "JSON object"},
		{`{"id":8,"method":"frobnicate"}`, 8, "unknown_method", `"frobnicate"`},
		{`{"id":9,"method":"send"}`, 9, "invalid", "params.group is required"},
		{`{"id":10,"method":"send","params":{"group":"friends"}}`, 10, "invalid", "params.text is required"},
		{`{"id":11,"method":"send","params":{"group":7,"text":"x"}}`, 11, "invalid", `field "group"`},
		{`{"id":12,"method":"send","params":{"grup":"friends","text":"x"}}`, 12, "invalid", "unknown field"},
		{`{"id":13,"method":"send","params":[1]}`, 13, "invalid", "params"},
		{`{"id":14,"method":"groups","params":{"x":1}}`, 14, "invalid", "unknown field"},
		{`{"id":15,"method":"read","params":{"group":"friends","limit":-1}}`, 15, "invalid", "negative"},
		{`{"id":16,"method":"read","params":{"group":"friends","after":-1}}`, 16, "invalid", `field "after"`},
		{`{"id":17,"method":"send_file","params":{"group":"friends","path":"rel/a.txt"}}`, 17, "invalid", "not absolute"},
		{"\xff\xfe\x00binary", 0, "bad_request", "malformed JSON"},
		{`{"id":18,"method":"members","params":{"group":"nope"}}`, 18, "not_found", `"nope"`},
	}
	for _, tt := range tests {
		c.send(tt.line)
		r := c.recvResponse()
		switch {
		case r.ID == nil || *r.ID != tt.id:
			t.Errorf("%s: response id %v, want %d", tt.line, r.ID, tt.id)
		case r.Error == nil:
			t.Errorf("%s: no error, result %s", tt.line, r.Result)
		case r.Error.Code != tt.code || !strings.Contains(r.Error.Message, tt.inMesage):
			t.Errorf("%s: error %+v, want code %q and a message with %q", tt.line, r.Error, tt.code, tt.inMesage)
		}
	}

	// Blank lines are skipped; a line over the limit is answered and
	// skipped; the connection goes on.
	c.send("")
	c.send("   ")
	c.send(`{"id":19,"method":"groups","params":{"pad":"` + strings.Repeat("x", api.MaxRequestSize) + `"}}`)
	if r := c.recvResponse(); r.Error == nil || r.Error.Code != "bad_request" || !strings.Contains(r.Error.Message, "longer than") {
		t.Errorf("over-long line: got %+v", r)
	}
	c.send(`{"id":20,"method":"groups","params":null}`)
	line := c.recv()
	var r struct {
		ID     uint64      `json:"id"`
		Result []api.Group `json:"result"`
	}
	if err := json.Unmarshal([]byte(line), &r); err != nil || r.ID != 20 || len(r.Result) != 1 || r.Result[0].Name != "friends" {
		t.Errorf("good request after bad ones: %s", line)
	}
}

// TestRequestJustUnderTheLimitIsServed checks the limit counts the line
// without its newline.
func TestRequestJustUnderTheLimitIsServed(t *testing.T) {
	b := apitest.New()
	if _, err := b.CreateGroup(context.Background(), "friends"); err != nil {
		t.Fatal(err)
	}
	_, path := serveUnix(t, b)
	c := dialRaw(t, "unix", path)
	head := `{"id":1,"method":"send","params":{"group":"friends","text":"`
	tail := `"}}`
	c.send(head + strings.Repeat("y", api.MaxRequestSize-len(head)-len(tail)) + tail)
	if r := c.recvResponse(); r.Error != nil {
		t.Fatalf("a request of exactly MaxRequestSize bytes: %+v", r.Error)
	}
}

// FuzzServerAnswersAfterAnyInput writes arbitrary bytes to a server and
// then a good request, which must be answered: no input crashes or
// wedges the server.
func FuzzServerAnswersAfterAnyInput(f *testing.F) {
	for _, seed := range []string{
		`{"id":1,"method":"groups"}`,
		`{"id":1,"method":"send","params":{"group":"friends","text":"hi"}}`,
		`{"id":1,"method":"subscribe"}`,
		`{"id":1,"method":"auth","params":{"token":1}}`,
		`{"id":1e99,"method":"read","params":{"group":"friends","limit":1e99}}`,
		`{"id":1,"method":"read","params":{"group":"friends","after":18446744073709551616}}`,
		"{\"id\":1,\"method\":\"send\",\"params\":{\"group\":\"\\ud800\",\"text\":\"\xff\"}}",
		`{"id":1,"method":"join","params":{"code":"pi1-x"}}` + "\n" + `{"id":2,"method":"leave","params":{"group":"x"}}`,
		`{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{`,
		"\x00\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	b := apitest.New()
	if _, err := b.CreateGroup(context.Background(), "friends"); err != nil {
		f.Fatal(err)
	}
	s := api.NewServer(b, nil)
	path := strings.TrimSuffix(f.TempDir(), "/") + "/p.sock"
	if err := s.ListenUnix(path); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	const probe = `{"id":987654321,"method":"identity"}`
	f.Fuzz(func(t *testing.T, input []byte) {
		// A subscribe in the input would turn the connection into an
		// event stream; the probe then gets bad_request, which still
		// shows the server answers.
		c := dialRaw(t, "unix", path)
		if _, err := c.nc.Write(append(append(input, '\n'), probe+"\n"...)); err != nil {
			t.Fatal(err)
		}
		for {
			line := c.recv()
			if bytes.Contains([]byte(line), []byte(`"id":987654321`)) {
				return
			}
		}
	})
}
