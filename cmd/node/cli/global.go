package cli

import (
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/parley-p2p/parley/cmd/node/api"
)

// globalFlags moves the flags given before the command (--data DIR and
// --json, which the commands take) to right after the command's name, and
// its subcommand's, where the command parses them: 'parley --data DIR
// groups' runs as 'parley groups --data DIR'. A flag it does not know
// ends them (-h, --version, or an unknown command's error).
func globalFlags(args []string) ([]string, error) {
	var flags []string
	for len(args) > 0 {
		name, _, hasValue := strings.Cut(strings.TrimLeft(args[0], "-"), "=")
		if !strings.HasPrefix(args[0], "-") || (name != "data" && name != "json") {
			break
		}
		n := 1
		if name == "data" && !hasValue {
			if len(args) < 2 {
				return nil, usageError{errors.New("flag needs an argument: --data DIR")}
			}
			n = 2
		}
		flags, args = append(flags, args[:n]...), args[n:]
	}
	if len(flags) == 0 {
		return args, nil
	}
	if len(args) == 0 {
		return nil, usageError{errors.New("missing command after the flags (run 'parley help')")}
	}
	at := 1
	if (args[0] == "contact" || args[0] == "group") && len(args) > 1 && !strings.HasPrefix(args[1], "-") {
		at = 2
	}
	return slices.Concat(args[:at], flags, args[at:]), nil
}

// wantsJSON tells whether args ask for JSON output (--json before any
// "--").
func wantsJSON(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "json" {
			continue
		}
		if b, err := strconv.ParseBool(value); !hasValue || err == nil && b {
			return true
		}
	}
	return false
}

// errorCode is the code --json prints for a command's error: the API's
// code (docs/API.md) for an error of the daemon, else one of the CLI's
// own: "usage" (a bad command line), "not_running" (no daemon), or
// "invalid".
func errorCode(err error) string {
	var u usageError
	var apiErr *api.Error
	switch {
	case errors.As(err, &u):
		return "usage"
	case errors.Is(err, api.ErrNotRunning):
		return "not_running"
	case errors.As(err, &apiErr):
		return apiErr.Code
	}
	if code := api.ErrorCode(err); code != api.CodeInternal {
		return code
	}
	return "invalid"
}

// printJSONError prints err as {"error":{"code":...,"message":...}}, the
// shape of the API's errors.
func printJSONError(w io.Writer, err error) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	// An error writing it has nowhere to go; stderr has the error.
	_ = enc.Encode(map[string]*api.Error{"error": {Code: errorCode(err), Message: err.Error()}})
}
