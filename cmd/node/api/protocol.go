package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// The protocol is newline-delimited JSON (docs/API.md): each request and
// each response is one JSON object on one line. Requests carry an id the
// client chooses; the response carries it back, so several requests can
// be in flight on one connection and their responses come in any order.

// MaxRequestSize is the longest request line the server accepts, newline
// excluded. A longer line is answered with a bad_request error and
// skipped.
const MaxRequestSize = 1 << 20

// maxResponseSize is the longest line the client accepts: a history
// read with no limit can be large.
const maxResponseSize = 256 << 20

// Method names.
const (
	MethodAuth          = "auth"
	MethodIdentity      = "identity"
	MethodContactCode   = "contact_code"
	MethodAddContact    = "add_contact"
	MethodContacts      = "contacts"
	MethodRemoveContact = "remove_contact"
	MethodRenameContact = "rename_contact"
	MethodCreateGroup   = "create_group"
	MethodGroups        = "groups"
	MethodMembers       = "members"
	MethodInvite        = "invite"
	MethodInviteCode    = "invite_code"
	MethodJoinRequests  = "join_requests"
	MethodApprove       = "approve"
	MethodDeny          = "deny"
	MethodJoin          = "join"
	MethodRemove        = "remove"
	MethodLeave         = "leave"
	MethodForgetGroup   = "forget_group"
	MethodSend          = "send"
	MethodSendFile      = "send_file"
	MethodRead          = "read"
	MethodStatus        = "status"
	MethodSubscribe     = "subscribe"
)

// request is one request line.
type request struct {
	ID     uint64          `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params,omitempty"`
}

// response is one response line: exactly one of Result and Error is set.
type response struct {
	ID     uint64          `json:"id"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *Error          `json:"error,omitempty"`
}

// eventLine is one line of an event stream.
type eventLine struct {
	Event *Event `json:"event"`
}

// incoming is any line a client reads: a response or an event.
type incoming struct {
	response
	Event *Event `json:"event,omitempty"`
}

// Params of the methods that take any.
type (
	authParams struct {
		Token string `json:"token"`
	}
	addContactParams struct {
		Code string `json:"code"`
		Name string `json:"name,omitempty"`
	}
	nameParams struct {
		Name string `json:"name"`
	}
	contactParams struct {
		Contact string `json:"contact"`
	}
	renameContactParams struct {
		Contact string `json:"contact"`
		Name    string `json:"name"`
	}
	createGroupParams struct {
		Name  string     `json:"name"`
		Suite suiteParam `json:"suite,omitempty"`
	}
	groupParams struct {
		Group string `json:"group"`
	}
	forgetParams struct {
		Group string `json:"group"`
		Force bool   `json:"force,omitempty"`
	}
	inviteParams struct {
		Group   string `json:"group"`
		Contact string `json:"contact"`
	}
	codeParams struct {
		Code string `json:"code"`
	}
	inviteCodeParams struct {
		Group     string `json:"group"`
		Approve   bool   `json:"approve,omitempty"`
		ApproveBy string `json:"approve_by,omitempty"`
	}
	requestParams struct {
		ID string `json:"id"`
	}
	removeParams struct {
		Group  string `json:"group"`
		Member string `json:"member"`
	}
	sendParams struct {
		Group string `json:"group"`
		Text  string `json:"text"`
	}
	sendFileParams struct {
		Group string `json:"group"`
		Path  string `json:"path"`
	}
	readParams struct {
		Group string `json:"group"`
		After uint64 `json:"after,omitempty"`
		Limit int    `json:"limit,omitempty"`
	}
	subscribeParams struct {
		Group string `json:"group,omitempty"`
	}
)

// Results that are not a Backend type.
type (
	codeResult struct {
		Code string `json:"code"`
	}
	// inviteCodeResult describes the code too: who approves its join.
	inviteCodeResult struct {
		Code      string `json:"code"`
		ApproveBy string `json:"approve_by,omitempty"`
	}
	idResult struct {
		ID string `json:"id"`
	}
	okResult struct{}
)

// decodeRequest parses one request line. It rejects unknown fields,
// trailing data and a missing method. On error the returned request
// carries the id if one could be read, so the error can be answered.
func decodeRequest(line []byte) (request, error) {
	var req request
	if err := decodeStrict(line, &req); err != nil {
		// Try for the id alone, leniently, so the client can match the
		// error to its request.
		var idOnly struct {
			ID uint64 `json:"id"`
		}
		if json.NewDecoder(bytes.NewReader(line)).Decode(&idOnly) == nil {
			req = request{ID: idOnly.ID}
		} else {
			req = request{}
		}
		return req, fmt.Errorf("%w: %s", ErrBadRequest, jsonProblem(err))
	}
	if req.Method == "" {
		return req, fmt.Errorf("%w: no method", ErrBadRequest)
	}
	return req, nil
}

// decodeParams decodes a request's params into v. Absent or null params
// leave v at its zero value.
// suiteParam is create_group's suite: a string (a name or number, as
// 'parley suites' lists them) or a JSON number, kept as text for the
// node to read.
type suiteParam string

func (s *suiteParam) UnmarshalJSON(b []byte) error {
	var str string
	if err := json.Unmarshal(b, &str); err == nil {
		*s = suiteParam(str)
		return nil
	}
	var n json.Number
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&n); err != nil {
		return errors.New("suite must be a string or a number")
	}
	*s = suiteParam(n.String())
	return nil
}

func decodeParams(method string, raw json.RawMessage, v any) error {
	if len(raw) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil
	}
	if err := decodeStrict(raw, v); err != nil {
		return fmt.Errorf("%w: %s params: %s", ErrInvalid, method, jsonProblem(err))
	}
	return nil
}

// decodeStrict decodes exactly one JSON value from data into v,
// rejecting unknown object fields and trailing data.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON value")
	}
	return nil
}

// jsonProblem describes a JSON decoding error for a person.
func jsonProblem(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "incomplete JSON"
	case errors.As(err, &syntax):
		return fmt.Sprintf("malformed JSON at byte %d: %s", syntax.Offset, syntax.Error())
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("field %q: want %s, got JSON %s", typ.Field, typ.Type, typ.Value)
		}
		return fmt.Sprintf("want a JSON object, got JSON %s", typ.Value)
	}
	return err.Error()
}

// errLineTooLong is returned by readLine for a line over its limit; the
// line has been consumed.
var errLineTooLong = errors.New("line too long")

// readLine reads one line of at most max bytes, without its newline. A
// longer line is read to its end and discarded, and errLineTooLong
// returned, so the next call starts at the next line. A last line
// without a newline is returned with a nil error; io.EOF comes after it.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	tooLong := false
	for {
		chunk, err := r.ReadSlice('\n')
		if err == nil {
			chunk = chunk[:len(chunk)-1] // the newline
		}
		if !tooLong {
			if len(line)+len(chunk) > max {
				tooLong, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err != nil && err != io.EOF:
			return nil, err
		case tooLong:
			return nil, errLineTooLong
		case err == io.EOF && len(line) == 0:
			return nil, io.EOF
		}
		return line, nil
	}
}
