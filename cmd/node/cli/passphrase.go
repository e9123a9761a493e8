package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// The store's passphrase comes from a file (--passphrase-file), an
// environment variable (--passphrase-env) or, when standard input is a
// terminal, from the person at it, asked without echo; never from the
// command line, where others can see it.

const passphraseFlags = `  --passphrase-file F   read the store's passphrase from file F
  --passphrase-env V    read it from environment variable V
                        (never from the command line, where others can see
                        it; without either, it is asked on the terminal)
`

// passphraseTries is how often a passphrase is asked before giving up
// (new ones that do not match, or a wrong one).
const passphraseTries = 3

var (
	// errNoTerminal: no passphrase flag, and nobody to ask.
	errNoTerminal = errors.New("standard input is not a terminal")
	// errMismatch: the two entries of a new passphrase differ.
	errMismatch = errors.New("the passphrases do not match")
	// errEmptyPassphrase: Enter alone.
	errEmptyPassphrase = errors.New("empty passphrase")
)

// terminal is where a passphrase is asked: standard input when it is a
// terminal (tests give a fake).
type terminal interface {
	// ReadPassword reads one line without echoing it, without its line
	// ending; it returns ctx.Err() once ctx is done.
	ReadPassword(ctx context.Context) ([]byte, error)
}

// stdinTerminal returns standard input as a terminal, or false if it is
// not one.
var stdinTerminal = func() (terminal, bool) {
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil, false
	}
	return tty(fd), true
}

// tty is a terminal's file descriptor.
type tty int

func (fd tty) ReadPassword(ctx context.Context) ([]byte, error) {
	state, err := term.GetState(int(fd))
	if err != nil {
		return nil, err
	}
	type result struct {
		line []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		line, err := term.ReadPassword(int(fd))
		done <- result{line, err}
	}()
	select {
	case r := <-done:
		return r.line, r.err
	case <-ctx.Done():
		// Ctrl-C: the reader is left blocked (the process is about to
		// exit), the terminal gets its echo back.
		term.Restore(int(fd), state)
		return nil, ctx.Err()
	}
}

// passphrase reads the passphrase named by the flags (nil if none).
func passphrase(file, env string) ([]byte, error) {
	switch {
	case file != "" && env != "":
		return nil, errors.New("give --passphrase-file or --passphrase-env, not both")
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("reading the passphrase: %w", err)
		}
		p := []byte(strings.TrimRight(string(b), "\r\n"))
		if len(p) == 0 {
			return nil, fmt.Errorf("the passphrase file %s is empty", file)
		}
		return p, nil
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok || v == "" {
			return nil, fmt.Errorf("environment variable %s is not set", env)
		}
		return []byte(v), nil
	}
	return nil, nil
}

// askPassphrase asks for a passphrase once; the prompt goes to w.
func askPassphrase(ctx context.Context, t terminal, w io.Writer, prompt string) ([]byte, error) {
	fmt.Fprint(w, prompt)
	p, err := t.ReadPassword(ctx)
	fmt.Fprintln(w) // the Enter was not echoed
	switch {
	case errors.Is(err, context.Canceled):
		return nil, errors.New("interrupted")
	case err != nil:
		return nil, fmt.Errorf("reading the passphrase: %w", err)
	case len(bytes.TrimRight(p, "\r\n")) == 0:
		return nil, errEmptyPassphrase
	}
	return bytes.TrimRight(p, "\r\n"), nil
}

// askNewPassphrase asks for a new passphrase twice, again if the two
// differ or it is empty, up to passphraseTries times.
func askNewPassphrase(ctx context.Context, t terminal, w io.Writer) ([]byte, error) {
	var err error
	for try := 1; ; try++ {
		var p, again []byte
		p, err = askPassphrase(ctx, t, w, "passphrase for the new store: ")
		if err == nil {
			again, err = askPassphrase(ctx, t, w, "the same passphrase again: ")
		}
		switch {
		case err == nil && bytes.Equal(p, again):
			clear(again)
			return p, nil
		case err == nil:
			err = errMismatch
		case !errors.Is(err, errEmptyPassphrase):
			return nil, err
		}
		clear(p)
		clear(again)
		if try == passphraseTries {
			return nil, err
		}
		fmt.Fprintf(w, "%v; try again\n", err)
	}
}
