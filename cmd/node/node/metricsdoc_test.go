package node

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestMetricsDocumentMatchesTheScrape: every parley_* metric that
// docs/METRICS.md lists is served by a running node, and every parley_*
// metric a node serves is listed (histograms by their base name), so the
// document and the program cannot drift apart.
func TestMetricsDocumentMatchesTheScrape(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "METRICS.md"))
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, line := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(line, "| `parley_") {
			continue
		}
		cell := strings.SplitN(line, "|", 3)[1]
		for _, m := range regexp.MustCompile("`(parley_[a-z_]+)`").FindAllStringSubmatch(cell, -1) {
			documented[m[1]] = true
		}
	}
	if len(documented) < 20 {
		t.Fatalf("found %d parley_* metrics in docs/METRICS.md; the parser missed some", len(documented))
	}
	ctx := context.Background()
	alice, bob := pairIn(t, "m")
	if _, err := alice.Send(ctx, "m", "count me"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "bob has it", func() bool { return len(texts(t, bob, "m")) == 1 })
	rec := httptest.NewRecorder()
	bob.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	served := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^# TYPE (parley_[a-z_]+) `).FindAllStringSubmatch(rec.Body.String(), -1) {
		served[m[1]] = true
	}
	for name := range documented {
		if !served[name] {
			t.Errorf("docs/METRICS.md lists %s, which the node does not serve", name)
		}
	}
	for name := range served {
		if !documented[name] {
			t.Errorf("the node serves %s, which docs/METRICS.md does not list", name)
		}
	}
}
