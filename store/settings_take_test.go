package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
)

// TestTakeSettingIsOneUse races takes of one setting, many times: exactly
// one gets the value, the others ErrNotFound, and the setting is gone.
func TestTakeSettingIsOneUse(t *testing.T) {
	s := openPlain(t, t.TempDir())
	const rounds, takers = 50, 8
	for r := range rounds {
		key := fmt.Sprintf("token-%d", r)
		b := s.NewBatch()
		b.PutSetting("invite", key, []byte("group"))
		mustWrite(t, s, b)

		var wg sync.WaitGroup
		var mu sync.Mutex
		won, lost := 0, 0
		start := make(chan struct{})
		for range takers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				v, err := s.TakeSetting(ctx, "invite", key)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil && string(v) == "group":
					won++
				case errors.Is(err, ErrNotFound):
					lost++
				default:
					t.Errorf("round %d: TakeSetting = %q, %v", r, v, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if won != 1 || lost != takers-1 {
			t.Fatalf("round %d: %d takes won, %d lost; want 1 and %d", r, won, lost, takers-1)
		}
		if _, err := s.Setting(ctx, "invite", key); !errors.Is(err, ErrNotFound) {
			t.Fatalf("round %d: Setting after take: %v, want ErrNotFound", r, err)
		}
	}
}

func TestTakeSettingOfAMissingSetting(t *testing.T) {
	s := openPlain(t, t.TempDir())
	if _, err := s.TakeSetting(ctx, "invite", "nothing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("TakeSetting of nothing: %v, want ErrNotFound", err)
	}
	if _, err := s.TakeSetting(ctx, "", "x"); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("TakeSetting with no scope: %v, want ErrInvalidArgument", err)
	}
}

func TestPurgeSettingsDeletesWhatItIsTold(t *testing.T) {
	s := openPlain(t, t.TempDir())
	b := s.NewBatch()
	b.PutSetting("invite", "old1", []byte("expired"))
	b.PutSetting("invite", "old2", []byte("expired"))
	b.PutSetting("invite", "new", []byte("valid"))
	b.PutSetting("invites", "other", []byte("expired"))
	mustWrite(t, s, b)
	n, err := s.PurgeSettings(ctx, "invite", func(_ string, v []byte) bool { return string(v) == "expired" })
	if err != nil || n != 2 {
		t.Fatalf("PurgeSettings = %d, %v; want 2, nil", n, err)
	}
	got, err := s.Settings(ctx, "invite")
	if err != nil || len(got) != 1 || string(got["new"]) != "valid" {
		t.Fatalf("Settings(invite) after purge = %q, %v; want only new", got, err)
	}
	if _, err := s.Setting(ctx, "invites", "other"); err != nil {
		t.Fatalf("another scope's setting was purged: %v", err)
	}
}

func TestReadProtectionTellsTheSeal(t *testing.T) {
	plain, keyed, sealed := t.TempDir(), t.TempDir(), t.TempDir()
	s := openPlain(t, plain)
	s2, err := Open(keyed, WithKeyFile(filepath.Join(t.TempDir(), "key")), WithGCInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	s3, err := openPassphrase(t, sealed, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		dir  string
		s    *Store
		want Protection
	}{
		{plain, s, Unencrypted},
		{keyed, s2, SealedByKeyFile},
		{sealed, s3, SealedByPassphrase},
	} {
		got, err := ReadProtection(tt.dir)
		if err != nil || got != tt.want {
			t.Errorf("ReadProtection = %v, %v; want %v", got, err, tt.want)
		}
		if got := tt.s.Protection(); got != tt.want {
			t.Errorf("Store.Protection = %v, want %v", got, tt.want)
		}
	}
	if _, err := ReadProtection(t.TempDir()); err == nil {
		t.Error("ReadProtection of an empty directory: no error")
	}
}
