package suite

import (
	"fmt"
	"strconv"
	"strings"
)

// Parse returns the cipher suite that s names: its name as String gives it
// (in any case), or its number in decimal or in hexadecimal with a 0x
// prefix ("84", "0x0054", "MLS_256_XWING_CHACHA20POLY1305_SHA512_Ed25519").
// A suite this package does not implement is ErrUnsupportedSuite.
func Parse(s string) (CipherSuite, error) {
	s = strings.TrimSpace(s)
	for _, cs := range All {
		if strings.EqualFold(s, cs.String()) {
			return cs, nil
		}
	}
	n, err := strconv.ParseUint(s, 0, 16)
	if err != nil || strings.HasPrefix(s, "0") && len(s) > 1 && !strings.HasPrefix(strings.ToLower(s), "0x") {
		// ParseUint would read a leading 0 as octal: "010" is not suite 8.
		return 0, fmt.Errorf("%w: %q", ErrUnsupportedSuite, s)
	}
	cs := CipherSuite(n)
	if !cs.IsValid() {
		return 0, fmt.Errorf("%w: %q", ErrUnsupportedSuite, s)
	}
	return cs, nil
}
