package cli

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

const versionUsage = `Usage: parley version [--json]

Shows the version of this program: its module version (or "(devel)"
when built from a checkout), the commit it was built from and when that
commit was made (when the build recorded them), and the Go version.

` + jsonFlag

// buildVersion is what 'parley version' shows.
type buildVersion struct {
	Version  string `json:"version"`
	Revision string `json:"revision,omitempty"`
	Time     string `json:"time,omitempty"`
	Modified bool   `json:"modified,omitempty"` // built with uncommitted changes
	Go       string `json:"go"`
}

// readBuildVersion reads the version from the build information the Go
// toolchain puts in the binary.
func readBuildVersion() buildVersion {
	v := buildVersion{Version: "(devel)", Go: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if bi.Main.Version != "" {
		v.Version = bi.Main.Version
	}
	if bi.GoVersion != "" {
		v.Go = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

func runVersion(args []string, stdout io.Writer) error {
	c := newCommand("version", versionUsage, true, stdout, io.Discard)
	if _, err := c.parse(args, 0, 0, ""); err != nil {
		return err
	}
	v := readBuildVersion()
	if c.json {
		return c.printJSON(v)
	}
	line := "parley " + v.Version
	if v.Revision != "" {
		line += ", commit " + v.Revision
		if v.Time != "" {
			line += " of " + v.Time
		}
		if v.Modified {
			line += " (modified)"
		}
	}
	_, err := fmt.Fprintf(stdout, "%s, %s\n", line, v.Go)
	return err
}
