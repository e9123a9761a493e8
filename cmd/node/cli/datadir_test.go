package cli

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDataDirPrecedence(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		flag, env, xdg string
		want           string
	}{
		{"", "", "", filepath.Join(home, ".local/share/parley")},
		{"", "", "/xdg", "/xdg/parley"},
		{"", "", "relative/xdg", filepath.Join(home, ".local/share/parley")}, // ignored, as the spec says
		{"", "/env", "/xdg", "/env"},
		{"/flag", "/env", "/xdg", "/flag"},
		{"rel", "", "", filepath.Join(wd, "rel")},
		{"~/p", "", "", filepath.Join(home, "p")},
		{"", "~", "", home},
		{"/a/../b/", "", "", "/b"},
	}
	for _, tt := range tests {
		t.Setenv("PARLEY_DATA", tt.env)
		t.Setenv("XDG_DATA_HOME", tt.xdg)
		got, err := dataDir(tt.flag)
		if err != nil || got != tt.want {
			t.Errorf("dataDir(%q) with PARLEY_DATA=%q XDG_DATA_HOME=%q = %q, %v; want %q", tt.flag, tt.env, tt.xdg, got, err, tt.want)
		}
	}
}
