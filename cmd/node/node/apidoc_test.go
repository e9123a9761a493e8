package node

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/parley-p2p/parley/cmd/node/api"
)

// TestAPIDocumentMatchesTheProgram runs every example of docs/API.md (a
// `→` request, and the `←` response under it) against a real node over
// its unix socket, as a script would, and checks the documented response
// against the real one: a result where a result is documented and the
// documented error code where an error is; every documented field a
// field of the method's result type; and each documented identifier
// (ids, peer IDs, fingerprints, codes, hashes) of the same form as the
// real one: the same length and the same signs at the same places (an
// example shortened with "..." only up to the dots). The event
// examples are checked the same way against events of their type seen on
// a subscribed connection, and the error table against the program's
// codes. The scenario is the document's: alice adds bob, makes
// "friends" and "chess", invites bob, joins carol's "book club" with an
// invite code, sends a text and a file, and ends by forgetting, removing,
// leaving, and renaming and removing bob as a contact (run last, so that
// the other examples find what they name).
func TestAPIDocumentMatchesTheProgram(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "API.md"))
	if err != nil {
		t.Fatal(err)
	}
	examples, events := parseAPIDoc(t, string(doc))
	checkErrorTable(t, string(doc))
	documentedMethods(t, examples)
	if len(examples) < 20 || len(events) < 5 {
		t.Fatalf("found %d examples and %d event examples in docs/API.md; the parser missed some", len(examples), len(events))
	}

	ctx := context.Background()
	alice, bob, carol, dave := testNode(t, "alice"), testNode(t, "bob"), testNode(t, "carol"), testNode(t, "dave")
	befriend(t, carol, alice)
	if _, err := carol.CreateGroup(ctx, "book club", api.WithSuite("0x0054")); err != nil {
		t.Fatal(err)
	}
	inviteCode, err := carol.InviteCode(ctx, "book club")
	if err != nil {
		t.Fatal(err)
	}
	bobCode, err := bob.ContactCode(ctx)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "lake.jpg")
	if err := os.WriteFile(file, make([]byte, 2481934), 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "parley.sock")
	srv := api.NewServer(alice, slog.New(slog.DiscardHandler))
	if err := srv.ListenUnix(sock); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	c := dialDoc(t, sock)
	// Every event of the run, for the event examples (the document's own
	// subscribe example asks for one group's).
	// Bob's too: he receives alice's messages, which become final there
	// once alice's next epoch tells him that she has his.
	seen := newEventLog()
	bobSock := filepath.Join(t.TempDir(), "parley.sock")
	bobSrv := api.NewServer(bob, slog.New(slog.DiscardHandler))
	if err := bobSrv.ListenUnix(bobSock); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bobSrv.Close() })
	for _, s := range []string{sock, bobSock} {
		all := dialDoc(t, s)
		if resp := all.call(t, map[string]any{"method": "subscribe"}); resp["error"] != nil {
			t.Fatalf("subscribe: %v", resp)
		}
		go seen.collect(all)
	}

	// What the document shows as placeholders, replaced by what this run
	// has; each is first checked to have the real value's form.
	substitute := map[string]string{"code": "", "path": file}
	var last []docExample
	requests := map[string]string{} // approve, deny: the id of a request of dave's
	for _, ex := range examples {
		if slices.Contains(lastMethods, ex.method) {
			last = append(last, ex)
			continue
		}
		if ex.method == "join_requests" {
			// Dave joins friends twice with codes made with approval:
			// one request to approve, one to deny.
			for _, verb := range []string{"approve", "deny"} {
				code, err := alice.InviteCode(ctx, "friends", api.WithApproval())
				if err != nil {
					t.Fatal(err)
				}
				if _, err := dave.Join(ctx, code); err != nil {
					t.Fatal(err)
				}
				eventually(t, 10*time.Second, "dave's join request", func() bool {
					rs, _ := alice.JoinRequests(ctx)
					for _, r := range rs {
						if !slices.Contains(slices.Collect(maps.Values(requests)), r.ID) {
							requests[verb] = r.ID
							return true
						}
					}
					return false
				})
			}
		}
		if id := requests[ex.method]; id != "" {
			if params, ok := ex.request["params"].(map[string]any); ok {
				if f := sameForm(fmt.Sprint(params["id"]), id); f != "" {
					t.Errorf("docs/API.md:%d: the request id %v is not of the form of a real one (%s): %s", ex.line, params["id"], id, f)
				}
				params["id"] = id
			}
		}
		if ex.method == "auth" {
			runAuthExample(t, srv, ex)
			continue
		}
		runDocExample(t, c, sock, ex, bobCode, inviteCode, substitute)
		if ex.method == "invite" {
			eventually(t, 20*time.Second, "bob in friends", func() bool { return groupOf(t, bob, "friends").Members == 2 })
		}
	}
	// The document's story of the end: chess is left (alice is alone in
	// it, so she is out at once) and forgotten; forgetting friends while
	// a member is refused; bob is removed and alice leaves.
	slices.SortStableFunc(last, func(a, b docExample) int {
		return slices.Index(lastMethods, a.method) - slices.Index(lastMethods, b.method)
	})
	// The text limit the document gives, to the byte.
	if !strings.Contains(string(doc), "64 KiB (65,536 bytes") {
		t.Error("docs/API.md no longer gives the text limit as 64 KiB (65,536 bytes)")
	}
	for _, n := range []int{maxText, maxText + 1} {
		resp := c.call(t, map[string]any{"method": "send", "params": map[string]any{"group": "friends", "text": strings.Repeat("a", n)}})
		if e, _ := resp["error"].(map[string]any); (n <= maxText) != (e == nil) || (e != nil && e["code"] != "invalid") {
			t.Errorf("a text of %d bytes: %v", n, resp)
		}
	}
	// The read example shows a final message: alice's next epoch makes
	// hers final at bob.
	if err := alice.UpdateKeys(ctx, "friends"); err != nil {
		t.Fatal(err)
	}
	waitFor(20*time.Second, func() bool { return seen.of("final") != nil })
	if err := alice.Leave(ctx, "chess"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "alice out of chess", func() bool { return groupOf(t, alice, "chess").Removed })
	for _, ex := range last {
		runDocExample(t, c, sock, ex, bobCode, inviteCode, substitute)
	}

	t.Logf("ran the %d examples of docs/API.md against alice's API; comparing its %d event examples", len(examples), len(events))
	for _, ev := range events {
		var real map[string]any
		waitFor(10*time.Second, func() bool { real = seen.of(ev.typ); return real != nil })
		if real == nil {
			t.Errorf("docs/API.md shows a %q event; none came on a subscribed connection in this run", ev.typ)
			continue
		}
		compareDoc(t, "event "+ev.typ, ev.body, real, reflect.TypeFor[api.Event]())
	}
}

// lastMethods are the methods whose examples run last, in this order:
// they take away what the others use.
var lastMethods = []string{"forget_group", "remove", "leave", "rename_contact", "remove_contact"}

// docExample is a request and its documented response, under the
// heading of its method.
type docExample struct {
	method   string
	line     int
	request  map[string]any
	response map[string]any // nil if the document shows none
}

type docEvent struct {
	typ  string
	body map[string]any
}

// parseAPIDoc reads the → and ← lines of the document's code blocks, and
// the {"event":...} lines of the Events section.
func parseAPIDoc(t *testing.T, doc string) ([]docExample, []docEvent) {
	t.Helper()
	var out []docExample
	var events []docEvent
	section := ""
	for i, line := range strings.Split(doc, "\n") {
		switch {
		case strings.HasPrefix(line, "### "):
			section = strings.TrimPrefix(line, "### ")
		case strings.HasPrefix(line, "→ "):
			var req map[string]any
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "→ ")), &req); err != nil {
				t.Fatalf("docs/API.md:%d: a request that is not JSON: %v", i+1, err)
			}
			if req["method"] != section {
				t.Errorf("docs/API.md:%d: a %v request under the heading %q", i+1, req["method"], section)
			}
			out = append(out, docExample{method: section, line: i + 1, request: req})
		case strings.HasPrefix(line, "← "):
			var resp map[string]any
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "← ")), &resp); err != nil {
				t.Fatalf("docs/API.md:%d: a response that is not JSON: %v", i+1, err)
			}
			if len(out) > 0 && out[len(out)-1].response == nil && out[len(out)-1].line == i {
				out[len(out)-1].response = resp
				continue
			}
			// An error shown alone: its code must be one of the table's.
			if e, ok := resp["error"].(map[string]any); !ok || (&api.Error{Code: fmt.Sprint(e["code"])}).Unwrap() == nil {
				t.Errorf("docs/API.md:%d: a response with no request above it that is not an error of a known code", i+1)
			}
		case strings.HasPrefix(line, `{"event":`):
			var ev struct {
				Event map[string]any `json:"event"`
			}
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("docs/API.md:%d: an event that is not JSON: %v", i+1, err)
			}
			events = append(events, docEvent{typ: fmt.Sprint(ev.Event["type"]), body: ev.Event})
		}
	}
	return out, events
}

// checkErrorTable checks that each code of the document's error table is
// one the program sends, and that the program sends no code the table
// leaves out.
func checkErrorTable(t *testing.T, doc string) {
	t.Helper()
	row := regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\|")
	_, errorsSection, _ := strings.Cut(doc, "\n## Errors\n")
	errorsSection, _, _ = strings.Cut(errorsSection, "\n## ")
	var documented []string
	for _, m := range row.FindAllStringSubmatch(errorsSection, -1) {
		documented = append(documented, m[1])
		if m[1] != api.CodeInternal && (&api.Error{Code: m[1]}).Unwrap() == nil {
			t.Errorf("docs/API.md's error table has the code %q, which the program does not send", m[1])
		}
	}
	for _, err := range []error{api.ErrNotFound, api.ErrAmbiguous, api.ErrBadCode, api.ErrNotMember, api.ErrDamaged,
		api.ErrExists, api.ErrInvalid, api.ErrUnavailable, api.ErrUnauthorized, api.ErrBadRequest, api.ErrUnknownMethod,
		context.Canceled, context.DeadlineExceeded, fmt.Errorf("anything else")} {
		if code := api.ErrorCode(err); !slices.Contains(documented, code) {
			t.Errorf("the program sends the error code %q, which docs/API.md's error table leaves out", code)
		}
	}
}

// runDocExample sends ex's request (its placeholders replaced) and
// checks the response against the documented one.
func runDocExample(t *testing.T, c *docConn, sock string, ex docExample, contactCode, inviteCode string, substitute map[string]string) {
	t.Helper()
	where := fmt.Sprintf("docs/API.md:%d (%s)", ex.line, ex.method)
	req := ex.request
	if params, ok := req["params"].(map[string]any); ok {
		for k, v := range params {
			s, isString := v.(string)
			switch {
			case !isString:
			case k == "code":
				real := contactCode
				if ex.method == "join" {
					real = inviteCode
				}
				if f := sameForm(s, real); f != "" {
					t.Errorf("%s: the code %q is not of the form of a real one (%.40s...): %s", where, s, real, f)
				}
				params[k] = real
			case substitute[k] != "":
				params[k] = substitute[k]
			}
		}
		if ex.method == "read" {
			params["after"] = 0 // this run's history is short
		}
	}
	if ex.method == "subscribe" {
		compareResponse(t, where, ex, dialDoc(t, sock).call(t, req))
		return
	}
	compareResponse(t, where, ex, c.call(t, req))
}

// runAuthExample runs the auth example where it matters, on a TCP
// listener of srv with a real token: a request before it is refused
// (unauthorized), the example with the token in its place gets the
// documented answer, and requests work after it.
func runAuthExample(t *testing.T, srv *api.Server, ex docExample) {
	t.Helper()
	where := fmt.Sprintf("docs/API.md:%d (auth)", ex.line)
	token, err := api.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	addr, err := srv.ListenTCP("127.0.0.1:0", token)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &docConn{nc: nc, in: bufio.NewReader(nc)}
	if resp := c.call(t, map[string]any{"method": "identity"}); fmt.Sprint(resp["error"]) == "<nil>" || !strings.Contains(fmt.Sprint(resp["error"]), "unauthorized") {
		t.Errorf("%s: a request before auth on TCP got %v, want unauthorized", where, resp)
	}
	params, _ := ex.request["params"].(map[string]any)
	if params == nil {
		t.Fatalf("%s: the auth example has no params", where)
	}
	if f := sameForm(fmt.Sprint(params["token"]), token); f != "" {
		t.Errorf("%s: the token %v is not of the form of a real one: %s", where, params["token"], f)
	}
	params["token"] = token
	compareResponse(t, where, ex, c.call(t, ex.request))
	if resp := c.call(t, map[string]any{"method": "identity"}); resp["error"] != nil {
		t.Errorf("%s: a request after auth on TCP: %v", where, resp)
	}
}

// documentedMethods checks that every method the protocol defines (the
// Method constants of cmd/node/api/protocol.go) has an example.
func documentedMethods(t *testing.T, examples []docExample) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "api", "protocol.go"))
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, ex := range examples {
		have[ex.method] = true
	}
	defined := regexp.MustCompile(`(?m)^\s*Method[A-Z]\w*\s*=\s*"(\w+)"`).FindAllStringSubmatch(string(src), -1)
	if len(defined) < 20 {
		t.Fatalf("found %d Method constants in protocol.go; the pattern missed some", len(defined))
	}
	for _, m := range defined {
		if !have[m[1]] {
			t.Errorf("docs/API.md has no example of the method %q", m[1])
		}
	}
}

// resultTypes are the Go types of the methods' results, for the fields
// the document may show.
var resultTypes = map[string]reflect.Type{
	"identity":       reflect.TypeFor[api.Identity](),
	"add_contact":    reflect.TypeFor[api.Contact](),
	"contacts":       reflect.TypeFor[[]api.Contact](),
	"rename_contact": reflect.TypeFor[api.Contact](),
	"join_requests":  reflect.TypeFor[[]api.JoinRequest](),
	"create_group":   reflect.TypeFor[api.Group](),
	"groups":         reflect.TypeFor[[]api.Group](),
	"members":        reflect.TypeFor[[]api.Member](),
	"join":           reflect.TypeFor[api.Group](),
	"read":           reflect.TypeFor[[]api.Message](),
	"status":         reflect.TypeFor[api.Status](),
}

func compareResponse(t *testing.T, where string, ex docExample, real map[string]any) {
	t.Helper()
	if ex.response == nil {
		return
	}
	if de, ok := ex.response["error"].(map[string]any); ok {
		re, ok := real["error"].(map[string]any)
		if !ok || re["code"] != de["code"] {
			t.Errorf("%s: documented error %v; the program answered %v", where, de["code"], real)
		}
		return
	}
	if _, ok := real["result"]; !ok {
		t.Errorf("%s: documented a result; the program answered %v", where, real)
		return
	}
	compareDoc(t, where, ex.response["result"], real["result"], resultTypes[ex.method])
}

// compareDoc checks a documented JSON value against the real one: the
// same JSON kind; for an object, every documented field a field of typ
// (when typ is known, else of the real object) and compared with the
// real field where the real object has it; for an array, each documented
// element against the real element of the same name, or else of the
// same place; identifiers of the same form.
func compareDoc(t *testing.T, where string, doc, real any, typ reflect.Type) {
	t.Helper()
	for typ != nil && (typ.Kind() == reflect.Pointer) {
		typ = typ.Elem()
	}
	switch d := doc.(type) {
	case map[string]any:
		r, ok := real.(map[string]any)
		if !ok {
			t.Errorf("%s: documented an object, the program gave %T", where, real)
			return
		}
		fields := jsonFields(typ)
		for k, dv := range d {
			ft, known := fields[k]
			if typ != nil && !known {
				t.Errorf("%s: documents a field %q that %v does not have", where, k, typ)
				continue
			}
			if typ == nil {
				if _, ok := r[k]; !ok {
					t.Errorf("%s: documents a field %q the program does not send (it sent %v)", where, k, keys(r))
					continue
				}
			}
			rv, ok := r[k]
			if !ok {
				continue // left out when empty: its type is checked above
			}
			if s, ok := dv.(string); ok && idFields[k] {
				if rs, ok := rv.(string); ok {
					if f := sameForm(s, rs); f != "" {
						t.Errorf("%s: %q is %q, not of the form of a real one (%.60q): %s", where, k, s, rs, f)
					}
				}
			}
			compareDoc(t, where+"."+k, dv, rv, ft)
		}
	case []any:
		r, ok := real.([]any)
		if !ok {
			t.Errorf("%s: documented an array, the program gave %T", where, real)
			return
		}
		var elem reflect.Type
		if typ != nil && typ.Kind() == reflect.Slice {
			elem = typ.Elem()
		}
		for i, dv := range d {
			match := -1
			if dm, ok := dv.(map[string]any); ok && dm["name"] != nil {
				match = slices.IndexFunc(r, func(x any) bool { xm, ok := x.(map[string]any); return ok && xm["name"] == dm["name"] })
			}
			if match < 0 && i < len(r) {
				match = i
			}
			if match < 0 {
				if dm, ok := dv.(map[string]any); ok && elem != nil {
					compareDoc(t, fmt.Sprintf("%s[%d]", where, i), dm, map[string]any{}, elem)
				}
				continue
			}
			compareDoc(t, fmt.Sprintf("%s[%d]", where, i), dv, r[match], elem)
		}
	default:
		if real != nil && doc != nil && reflect.TypeOf(doc) != reflect.TypeOf(real) {
			t.Errorf("%s: documented %v (%T), the program gave %v (%T)", where, doc, doc, real, real)
		}
	}
}

// idFields are the fields whose values have a form: hex ids and hashes,
// peer IDs, fingerprints, codes.
var idFields = map[string]bool{"id": true, "group": true, "peer_id": true, "fingerprint": true, "sender_fingerprint": true, "code": true, "sha256": true}

// sameForm says how a documented value differs in form from a real one,
// or "" if it does not: the same length (unless the document shortens it
// with "..." or "…", then up to there) and at each place a letter or
// digit where the real one has one, else the same sign.
func sameForm(doc, real string) string {
	shown, short := doc, false
	for _, dots := range []string{"...", "…"} {
		if i := strings.Index(shown, dots); i >= 0 {
			shown, short = shown[:i], true
		}
	}
	rs, ds := []rune(real), []rune(shown)
	if !short && len(ds) != len(rs) {
		return fmt.Sprintf("%d characters, the program's have %d", len(ds), len(rs))
	}
	if len(ds) > len(rs) {
		return fmt.Sprintf("%d characters before the dots, the program's have %d in all", len(ds), len(rs))
	}
	// A scheme ("parley-invite:") is the same to the letter; after it,
	// letters, digits, '-' and '_' are one kind (ids, hashes, peer IDs
	// and base64url differ in them from one run to the next), and the
	// signs between them are the same.
	scheme := 0
	if i := strings.IndexRune(real, ':'); i >= 0 && !strings.ContainsAny(real[:i], "/ ") {
		scheme = len([]rune(real[:i+1]))
		if !strings.HasPrefix(doc, real[:i+1]) {
			return fmt.Sprintf("it does not begin with %q", real[:i+1])
		}
	}
	kind := func(r rune) string {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || (scheme > 0 && (r == '-' || r == '_')) {
			return "a letter or digit"
		}
		return fmt.Sprintf("%q", r)
	}
	for i, d := range ds {
		if dk, rk := kind(d), kind(rs[i]); dk != rk {
			return fmt.Sprintf("character %d is %s, the program's is %s", i+1, dk, rk)
		}
	}
	return ""
}

// jsonFields maps the JSON names of a struct type's fields (embedded
// structs included) to their types; nil for a type that is not a struct.
func jsonFields(typ reflect.Type) map[string]reflect.Type {
	if typ == nil || typ.Kind() != reflect.Struct {
		return nil
	}
	out := map[string]reflect.Type{}
	for f := range typ.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case f.Anonymous && name == "":
			for k, v := range jsonFields(f.Type) {
				out[k] = v
			}
		case name == "-" || !f.IsExported():
		case name == "":
			out[f.Name] = f.Type
		default:
			out[name] = f.Type
		}
	}
	return out
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// docConn is a connection to the API that sends one request at a time
// and reads its response, as a simple script does.
type docConn struct {
	nc  net.Conn
	in  *bufio.Reader
	ids uint64
}

func dialDoc(t *testing.T, sock string) *docConn {
	t.Helper()
	nc, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &docConn{nc: nc, in: bufio.NewReader(nc)}
}

func (c *docConn) call(t *testing.T, req map[string]any) map[string]any {
	t.Helper()
	c.ids++
	req["id"] = c.ids
	line, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	c.nc.SetDeadline(time.Now().Add(30 * time.Second))
	defer c.nc.SetDeadline(time.Time{})
	if _, err := c.nc.Write(append(line, '\n')); err != nil {
		t.Fatal(err)
	}
	for {
		resp, err := c.in.ReadBytes('\n')
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		var m map[string]any
		if err := json.Unmarshal(resp, &m); err != nil {
			t.Fatalf("%s: a response that is not JSON: %q", line, resp)
		}
		if id, _ := m["id"].(float64); uint64(id) == c.ids {
			return m
		}
	}
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) {
	deadline := time.Now().Add(timeout)
	for !cond() && time.Now().Before(deadline) {
		<-time.After(50 * time.Millisecond)
	}
}

// eventLog keeps the latest event of each type seen on a subscribed
// connection.
type eventLog struct {
	mu   chan struct{}
	last map[string]map[string]any
}

func newEventLog() *eventLog {
	l := &eventLog{mu: make(chan struct{}, 1), last: map[string]map[string]any{}}
	return l
}

func (l *eventLog) collect(c *docConn) {
	for {
		line, err := c.in.ReadBytes('\n')
		if err != nil {
			return
		}
		var ev struct {
			Event map[string]any `json:"event"`
		}
		if json.Unmarshal(line, &ev) != nil || ev.Event == nil {
			continue
		}
		l.mu <- struct{}{}
		l.last[fmt.Sprint(ev.Event["type"])] = ev.Event
		<-l.mu
	}
}

func (l *eventLog) of(typ string) map[string]any {
	l.mu <- struct{}{}
	defer func() { <-l.mu }()
	return l.last[typ]
}
