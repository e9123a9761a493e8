package chaos

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// damage plays an evDamage: it kills the churning member with kill -9,
// damages 64 bytes in the middle of one of its store's files (a value
// log or a table, chosen by the seed), and starts it again. The daemon
// must start and run whatever the damage hit. If the damage made the
// group's saved state unreadable, the daemon must say so (the group is
// listed as damaged, never dropped); the harness then takes the way out
// the daemon names: it forgets the group there, and a member that stays
// removes it (if the others still count it in) and invites it back.
func (h *harness) damage(e event) {
	d := h.ds[e.node]
	d.stop(syscall.SIGKILL)
	what, err := damageStore(d.dir, e.where)
	if err != nil {
		h.troubles = append(h.troubles, fmt.Sprintf("damaging %s's store: %v", d.name, err))
	}
	h.damaged++
	h.step(fmt.Sprintf("damaged %s's store: %s", d.name, what))
	if err := d.start(); err != nil {
		// A damaged store may keep the daemon from starting only if
		// it says why; a silent exit or a hang is a defect.
		h.troubles = append(h.troubles, fmt.Sprintf("after damage to %s: %v", d.name, err))
		d.stop(syscall.SIGKILL)
		return
	}
	gs, err := d.groups()
	if err != nil {
		h.troubles = append(h.troubles, fmt.Sprintf("after damage to %s: %v", d.name, err))
		return
	}
	i := slices.IndexFunc(gs, func(g groupInfo) bool { return g.Name == group })
	switch {
	case i < 0 && !h.forgotten:
		h.troubles = append(h.troubles, fmt.Sprintf("after damage to %s's store the group %s is gone from its list (%s)", d.name, group, what))
		return
	case i < 0:
		return
	case gs[i].Damaged == "":
		h.forgotten = false
		return
	}
	h.step(fmt.Sprintf("%s lists %s as damaged (%s): forgetting it there", d.name, group, gs[i].Damaged))
	if _, err := d.cli("group", "forget", group); err != nil {
		h.troubles = append(h.troubles, fmt.Sprintf("forgetting the damaged group at %s: %v", d.name, err))
		return
	}
	h.forgotten = true
	h.rejoin(e.node)
}

// rejoin has a running member that stays remove the churning member, if
// the group still counts it in, and invite it back; each step may be
// refused under a partition (then the churning member stays out, its
// group forgotten, until a later membership change invites it).
func (h *harness) rejoin(node int) {
	var by *daemon
	for _, i := range h.stay {
		if h.ds[i].running() {
			by = h.ds[i]
			break
		}
	}
	if by == nil {
		return
	}
	r := h.ds[node]
	// Whether the group still counts it in, by name: a count of members
	// says nothing while another membership change is under way.
	counted := func() (bool, error) {
		var ms []struct {
			Name string `json:"name"`
		}
		if err := by.cliJSON(&ms, "members", group); err != nil {
			return false, err
		}
		for _, m := range ms {
			if m.Name == r.name {
				return true, nil
			}
		}
		return false, nil
	}
	if in, err := counted(); err == nil && in {
		if _, err := by.cli("remove", group, r.name); err != nil {
			h.step(fmt.Sprintf("remove of %s by %s refused: %v", r.name, by.name, err))
			return
		}
		h.churned++
		if !waitUntil(20*time.Second, func() bool {
			in, err := counted()
			return err == nil && !in
		}) {
			h.step(fmt.Sprintf("%s's removal of %s not committed within 20s", by.name, r.name))
			return
		}
	}
	h.churnIn = false
	if _, err := by.cli("invite", group, r.name); err != nil {
		h.step(fmt.Sprintf("invite of %s by %s refused: %v", r.name, by.name, err))
		return
	}
	h.churnIn = true
	h.churned++
	h.step(fmt.Sprintf("%s invited %s back", by.name, r.name))
}

// damageStore inverts 64 bytes in the middle of one of the store's value
// logs or tables: where[0] picks the file (weighted by size), where[1]
// the place within its middle half. It returns what it damaged.
func damageStore(dir string, where [2]float64) (string, error) {
	type file struct {
		path string
		size int64
	}
	var files []file
	var total int64
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return err
		}
		if !strings.HasSuffix(path, ".vlog") && !strings.HasSuffix(path, ".sst") {
			return nil
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		// Value logs are sparse and longer than what they hold: what
		// is written is what the file's blocks hold.
		size := fi.Size()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			size = min(size, st.Blocks*512)
		}
		if size < 4096 {
			return nil
		}
		files = append(files, file{path, size})
		total += size
		return nil
	})
	if err != nil {
		return "", err
	}
	if len(files) == 0 {
		return "nothing: no value log or table of 4 KiB or more", nil
	}
	slices.SortFunc(files, func(a, b file) int { return strings.Compare(a.path, b.path) })
	pick := int64(where[0] * float64(total))
	f := files[len(files)-1]
	for _, c := range files {
		if pick < c.size {
			f = c
			break
		}
		pick -= c.size
	}
	off := f.size/4 + int64(where[1]*float64(f.size/2))
	fh, err := os.OpenFile(f.path, os.O_RDWR, 0)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	buf := make([]byte, 64)
	n, err := fh.ReadAt(buf, off)
	if n == 0 {
		return "", fmt.Errorf("reading %s at %d: %w", f.path, off, err)
	}
	for i := range buf[:n] {
		buf[i] ^= 0xff
	}
	if _, err := fh.WriteAt(buf[:n], off); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d bytes inverted at offset %d of %s (%d bytes written)", n, off, filepath.Base(f.path), f.size), fh.Sync()
}
