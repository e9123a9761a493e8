package suite

import (
	"errors"
	"testing"
)

func TestParseTakesNamesAndNumbers(t *testing.T) {
	tests := []struct {
		in   string
		want CipherSuite
	}{
		{"1", MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519},
		{"0x0001", MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519},
		{"84", MLS_256_XWING_CHACHA20POLY1305_SHA512_Ed25519},
		{"0x0054", MLS_256_XWING_CHACHA20POLY1305_SHA512_Ed25519},
		{"0X54", MLS_256_XWING_CHACHA20POLY1305_SHA512_Ed25519},
		{"MLS_256_XWING_CHACHA20POLY1305_SHA512_Ed25519", MLS_256_XWING_CHACHA20POLY1305_SHA512_Ed25519},
		{"mls_256_xwing_aes256gcm_sha512_ed25519", MLS_256_XWING_AES256GCM_SHA512_Ed25519},
		{" 7 ", MLS_256_DHKEMP384_AES256GCM_SHA384_P384},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("Parse(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", "0", "8", "0x0055", "010", "65536", "-1", "MLS_128_NOPE", "x25519"} {
		if got, err := Parse(in); !errors.Is(err, ErrUnsupportedSuite) {
			t.Errorf("Parse(%q) = %v, %v; want ErrUnsupportedSuite", in, got, err)
		}
	}
}

func TestParseReadsEveryNameBack(t *testing.T) {
	for _, cs := range All {
		if got, err := Parse(cs.String()); err != nil || got != cs {
			t.Errorf("Parse(%q) = %v, %v", cs.String(), got, err)
		}
	}
}
