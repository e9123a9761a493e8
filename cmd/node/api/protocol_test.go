package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestReadLine(t *testing.T) {
	const max = 8
	input := "short\n" + // fits
		"12345678\n" + // exactly max
		"123456789\n" + // one over
		strings.Repeat("z", 100) + "\n" + // far over, across buffer fills
		"\n" + // empty
		"last" // no newline
	r := bufio.NewReaderSize(strings.NewReader(input), 16)
	want := []struct {
		line string
		err  error
	}{
		{"short", nil}, {"12345678", nil}, {"", errLineTooLong}, {"", errLineTooLong},
		{"", nil}, {"last", nil}, {"", io.EOF},
	}
	for i, w := range want {
		line, err := readLine(r, max)
		if string(line) != w.line || !errors.Is(err, w.err) {
			t.Errorf("line %d: got %q, %v; want %q, %v", i, line, err, w.line, w.err)
		}
	}
}

func TestDecodeRequestKeepsTheID(t *testing.T) {
	req, err := decodeRequest([]byte(`{"id":42,"method":"send","params":{"group":"g"},"bogus":1}`))
	if !errors.Is(err, ErrBadRequest) || req.ID != 42 {
		t.Errorf("got id %d, %v; want id 42 and ErrBadRequest", req.ID, err)
	}
}

// FuzzDecodeRequest checks the request decoder never panics, that what it
// accepts re-encodes to a request it decodes the same way, and that the
// params decoders of every method cope with any params.
func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range []string{
		`{"id":1,"method":"identity"}`,
		`{"id":2,"method":"send","params":{"group":"friends","text":"hi"}}`,
		`{"id":3,"method":"read","params":{"group":"friends","after":10,"limit":5}}`,
		`{"id":4,"method":"auth","params":{"token":"abc"}}`,
		`{"id":5,"method":"subscribe","params":null}`,
		`{"id":18446744073709551615,"method":"x","params":[]}`,
		`{"id":1,"method":"send","params":{"group":"\u0000","text":"\ud83d"}}`,
		`{"method":"groups","id":1,"id":2}`,
		`{}`, `null`, `[]`, `"x"`, ``,
	} {
		f.Add([]byte(seed))
	}
	params := []func() any{
		func() any { return &authParams{} }, func() any { return &addContactParams{} },
		func() any { return &nameParams{} }, func() any { return &groupParams{} },
		func() any { return &inviteParams{} }, func() any { return &codeParams{} },
		func() any { return &removeParams{} }, func() any { return &sendParams{} },
		func() any { return &sendFileParams{} }, func() any { return &readParams{} },
		func() any { return &subscribeParams{} }, func() any { return &struct{}{} },
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		req, err := decodeRequest(line)
		for _, p := range params {
			decodeParams("fuzz", json.RawMessage(line), p())
			if err == nil {
				decodeParams(req.Method, req.Params, p())
			}
		}
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("decode error %v does not wrap ErrBadRequest", err)
			}
			return
		}
		again, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("re-encoding %+v: %v", req, err)
		}
		req2, err := decodeRequest(again)
		if err != nil {
			t.Fatalf("re-encoded request %s does not decode: %v", again, err)
		}
		if req2.ID != req.ID || req2.Method != req.Method || !jsonEqual(req2.Params, req.Params) {
			t.Fatalf("round trip changed the request:\n%+v\n%+v", req, req2)
		}
		if again2, _ := json.Marshal(req2); !bytes.Equal(again, again2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", again, again2)
		}
	})
}

// jsonEqual compares two JSON values by meaning (both absent counts as
// equal).
func jsonEqual(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}
