package wire

import "testing"

func TestIsGREASEMatchesTheReservedValues(t *testing.T) {
	n := 0
	for v := range 1 << 16 {
		if IsGREASE(uint16(v)) {
			n++
			if uint16(v) != GREASE[(v>>12)] {
				t.Errorf("IsGREASE(%#04x), not a GREASE value", v)
			}
		}
	}
	if n != len(GREASE) {
		t.Errorf("%d values are GREASE, want %d", n, len(GREASE))
	}
	for _, v := range GREASE {
		if !IsGREASE(ExtensionType(v)) {
			t.Errorf("IsGREASE(%#04x) = false", v)
		}
	}
}
