package sim

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"slices"
	"strings"
	"testing"
)

// svgSeries parses an SVG and returns the names of its series per panel
// and its text elements.
func svgSeries(t *testing.T, data []byte) (panels [][]string, texts []string) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(data))
	var inText bool
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return panels, texts
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v\n%s", err, data)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			attr := map[string]string{}
			for _, a := range el.Attr {
				attr[a.Name.Local] = a.Value
			}
			switch {
			case el.Name.Local == "g" && attr["class"] == "panel":
				panels = append(panels, nil)
			case el.Name.Local == "g" && attr["class"] == "series":
				panels[len(panels)-1] = append(panels[len(panels)-1], attr["data-name"])
			case el.Name.Local == "text":
				inText = true
			}
		case xml.CharData:
			if inText {
				texts = append(texts, string(el))
			}
		case xml.EndElement:
			inText = false
		}
	}
}

func TestSVGHasPanelsSeriesAndLabels(t *testing.T) {
	charts := []Chart{
		{Title: "Convergence after the partition heals", XLabel: "group size", YLabel: "ms", LogX: true, DataTicks: true,
			Series: []Series{
				{Name: "p50", X: []float64{10, 100, 1000}, Y: []float64{120, 340, 900}},
				{Name: "p99 <slowest>", X: []float64{10, 100, 1000}, Y: []float64{400, 800, math.NaN()}},
			}},
		{Title: "Fork rate & rollbacks", XLabel: "seed", YLabel: "forks per commit", DataTicks: true,
			Series: []Series{{Name: "fork rate", X: []float64{1, 2, 3}, Y: []float64{0, 0.05, 0.1}, Bars: true}}},
	}
	var buf bytes.Buffer
	if err := WriteSVG(&buf, charts...); err != nil {
		t.Fatal(err)
	}
	panels, texts := svgSeries(t, buf.Bytes())
	want := [][]string{{"p50", "p99 <slowest>"}, {"fork rate"}}
	if len(panels) != len(want) {
		t.Fatalf("got %d panels, want %d", len(panels), len(want))
	}
	for i := range want {
		if !slices.Equal(panels[i], want[i]) {
			t.Errorf("panel %d series = %q, want %q", i, panels[i], want[i])
		}
	}
	for _, label := range []string{"Convergence after the partition heals", "group size", "ms", "10", "100", "1000",
		"Fork rate & rollbacks", "forks per commit", "0.10", "p99 <slowest>"} {
		if !slices.Contains(texts, label) {
			t.Errorf("no text %q in the SVG; texts: %q", label, texts)
		}
	}
	if strings.Contains(buf.String(), "NaN") {
		t.Error("a NaN point was drawn")
	}
}

func TestSVGRejectsBadCharts(t *testing.T) {
	for _, tc := range []struct {
		name   string
		charts []Chart
	}{
		{"no charts", nil},
		{"ragged series", []Chart{{Series: []Series{{Name: "a", X: []float64{1, 2}, Y: []float64{1}}}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := WriteSVG(io.Discard, tc.charts...); !errors.Is(err, ErrBadChart) {
				t.Errorf("err = %v, want ErrBadChart", err)
			}
		})
	}
}

func TestSVGDrawsEmptyAndSinglePointCharts(t *testing.T) {
	for _, c := range []Chart{
		{Title: "empty"},
		{Title: "one point", Series: []Series{{Name: "a", X: []float64{5}, Y: []float64{0}}}},
		{Title: "one bar, log", LogX: true, Series: []Series{{Name: "a", X: []float64{5}, Y: []float64{3}, Bars: true}}},
	} {
		var buf bytes.Buffer
		if err := WriteSVG(&buf, c); err != nil {
			t.Fatalf("%s: %v", c.Title, err)
		}
		svgSeries(t, buf.Bytes())
		if s := buf.String(); strings.Contains(s, "NaN") || strings.Contains(s, "Inf") {
			t.Errorf("%s: non-finite coordinates:\n%s", c.Title, s)
		}
	}
}

func TestNiceTicksAreRound(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float64
		want   []string
	}{
		{0, 1, []string{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"}},
		{0, 1000, []string{"0", "200", "400", "600", "800", "1000"}},
		{0, 0.1, []string{"0.00", "0.02", "0.04", "0.06", "0.08", "0.10"}},
	} {
		_, got := niceTicks(tc.lo, tc.hi)
		if !slices.Equal(got, tc.want) {
			t.Errorf("ticks(%v, %v) = %q, want %q", tc.lo, tc.hi, got, tc.want)
		}
	}
}
