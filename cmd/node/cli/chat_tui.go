package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	tea "github.com/charmbracelet/bubbletea"
)

// runTUI runs the full-screen chat on a terminal until the person leaves
// it or ctx ends.
func runTUI(ctx context.Context, s *chatSession, stdin io.Reader, stdout io.Writer) error {
	if _, err := newChatProgram(ctx, s, stdin, stdout).Run(); err != nil {
		if ctx.Err() != nil || errors.Is(err, tea.ErrInterrupted) {
			return nil
		}
		return fmt.Errorf("the terminal: %w", err)
	}
	return nil
}

// newChatProgram returns the full-screen chat of s, on the alternate
// screen of the terminal.
func newChatProgram(ctx context.Context, s *chatSession, stdin io.Reader, stdout io.Writer) *tea.Program {
	return tea.NewProgram(newChatModel(ctx, s),
		tea.WithContext(ctx), tea.WithInput(stdin), tea.WithOutput(stdout),
		tea.WithAltScreen(),
		tea.WithoutSignalHandler(), // the caller's ctx ends on SIGINT and SIGTERM
	)
}
