package api_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/parley-p2p/parley/cmd/node/api"
	"github.com/parley-p2p/parley/cmd/node/api/apitest"
)

// TestCreateGroupTakesASuite: create_group's suite param is a string or a
// JSON number, reaches the backend as text, and the group's suite comes
// back in the result; the Go client sends it with WithSuite, and leaves
// it out when not given.
func TestCreateGroupTakesASuite(t *testing.T) {
	b := apitest.New()
	_, path := serveUnix(t, b)
	c := dialRaw(t, "unix", path)
	for _, tt := range []struct {
		line  string
		suite uint16
		code  string
	}{
		{`{"id":1,"method":"create_group","params":{"name":"a"}}`, 1, ""},
		{`{"id":2,"method":"create_group","params":{"name":"b","suite":"0x0054"}}`, 0x54, ""},
		{`{"id":3,"method":"create_group","params":{"name":"c","suite":84}}`, 0x54, ""},
		{`{"id":4,"method":"create_group","params":{"name":"d","suite":"3"}}`, 3, ""},
		{`{"id":5,"method":"create_group","params":{"name":"e","suite":true}}`, 0, "invalid"},
		{`{"id":6,"method":"create_group","params":{"name":"f","suite":"nope"}}`, 0, "invalid"},
	} {
		c.send(tt.line)
		r := c.recvResponse()
		if tt.code != "" {
			if r.Error == nil || r.Error.Code != tt.code {
				t.Errorf("%s: %+v, want error %q", tt.line, r, tt.code)
			}
			continue
		}
		var g api.Group
		if r.Error != nil || json.Unmarshal(r.Result, &g) != nil || g.Suite != tt.suite {
			t.Errorf("%s: result %s, error %+v; want a group in suite 0x%04x", tt.line, r.Result, r.Error, tt.suite)
		}
		if tt.suite == 0x54 && !strings.Contains(string(r.Result), `"suite_name":"MLS_256_XWING_CHACHA20POLY1305_SHA512_Ed25519"`) {
			t.Errorf("%s: result %s has no suite_name", tt.line, r.Result)
		}
	}

	_, client := serveFake(t, transports[0])
	ctx := context.Background()
	if g, err := client.CreateGroup(ctx, "default"); err != nil || g.Suite != 1 {
		t.Errorf("CreateGroup without a suite: %+v, %v; want the backend's default", g, err)
	}
	if g, err := client.CreateGroup(ctx, "quantum", api.WithSuite("0x0054")); err != nil || g.Suite != 0x54 {
		t.Errorf("CreateGroup WithSuite(0x0054): %+v, %v", g, err)
	}
}
