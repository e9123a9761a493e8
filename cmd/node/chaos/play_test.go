package chaos

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// play runs the schedule in order, each event at its offset (or as soon
// as the one before it is done), then heals: every link up and back to
// the background loss, every daemon running.
func (h *harness) play(evs []event) {
	t := h.t
	files := filepath.Join(h.work, "files")
	if err := os.MkdirAll(files, 0o700); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	h.step("chaos starts")
	for _, e := range evs {
		if e.at < h.cfg.duration {
			if wait := time.Until(start.Add(e.at)); wait > 0 {
				<-time.After(wait)
			}
		}
		h.checkCrashes()
		switch e.kind {
		case evText:
			h.sendText(e.node, fmt.Sprintf("text #%d from %s (seed %d)", e.n, h.ds[e.node].name, h.cfg.seed))
		case evFile:
			h.sendFile(files, e)
		case evKill:
			h.ds[e.node].stop(syscall.SIGKILL)
		case evTerm:
			if err := h.ds[e.node].stop(syscall.SIGTERM); err != nil {
				h.troubles = append(h.troubles, err.Error())
			}
		case evRestart:
			h.restart(h.ds[e.node])
		case evChurn:
			h.churn(e.node)
		case evDamage:
			h.damage(e)
		case evPartition, evHeal:
			for _, i := range e.nodes {
				h.nw.setLink(t, i, e.kind == evHeal)
			}
			if e.kind == evHeal {
				h.converge.heal(h, time.Now())
			}
		case evLossy, evSlow, evRestore:
			l := e.link
			if e.kind == evRestore {
				l = h.imp.base
			}
			if err := h.imp.set(e.node, l); err != nil {
				t.Fatalf("impairing %s's link: %v", h.ds[e.node].name, err)
			}
		}
		h.faults[e.kind]++
		if e.kind != evText {
			h.step(e.String())
		}
	}
	h.step("schedule done; healing")
	if h.imp != nil {
		if err := h.imp.restore(); err != nil {
			t.Fatalf("restoring the links: %v", err)
		}
	}
	for i, d := range h.ds {
		h.nw.setLink(t, i, true)
		if !d.running() {
			h.restart(d)
		}
	}
	h.checkCrashes()
}

// churn has member i invite the removed member back if it is out, or
// remove it if it is in, as member i sees the group: changes made on two
// sides of a partition are concurrent, and the fork choice may keep
// either (a removal made on a losing branch is not made again when the
// winner removed that leaf already and added the member anew), so the
// harness's own count of changes can be wrong for minutes. A change the
// CLI refuses (the member is cut off from the one it invites, or the
// invitation is not committed yet) is noted, not counted as a problem:
// the schedule goes on.
func (h *harness) churn(i int) {
	d, r := h.ds[i], h.ds[h.removed]
	if !d.running() {
		return
	}
	if g, err := d.group(group); err == nil && !g.Removed && g.Damaged == "" {
		h.churnIn = g.Members == len(h.stay)+1
	}
	verb := "invite"
	if h.churnIn {
		verb = "remove"
	}
	if _, err := d.cli(verb, group, r.name); err != nil {
		h.step(fmt.Sprintf("%s of %s by %s refused: %v", verb, r.name, d.name, err))
		return
	}
	h.churnIn = !h.churnIn
	h.churned++
	h.step(fmt.Sprintf("%s of %s by %s", verb, r.name, d.name))
}

func (h *harness) restart(d *daemon) {
	if err := d.start(); err != nil {
		h.troubles = append(h.troubles, fmt.Sprintf("restart: %v", err))
		d.stop(syscall.SIGKILL)
	}
}

// checkCrashes notes a daemon that exited on its own and starts it again.
func (h *harness) checkCrashes() {
	for _, d := range h.ds {
		if d.cmd != nil && !d.running() {
			h.troubles = append(h.troubles, fmt.Sprintf("%s's daemon exited on its own (%v); log %s", d.name, d.cmd.ProcessState, d.logPath))
			d.stop(syscall.SIGKILL)
			h.restart(d)
		}
	}
}

func (h *harness) sendFile(dir string, e event) {
	name := fmt.Sprintf("f%03d-%s.bin", e.n, h.ds[e.node].name)
	data := fileData(h.cfg.seed, e.n, e.size)
	sum := sha256.Sum256(data)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		h.t.Fatal(err)
	}
	var res struct{ ID string }
	if err := h.ds[e.node].cliJSON(&res, "send", group, "--file", path, "--no-wait"); err != nil {
		h.troubles = append(h.troubles, fmt.Sprintf("send of a file failed: %v", err))
		return
	}
	h.sent = append(h.sent, sent{from: e.node, key: name, file: true, size: e.size, sum: hex.EncodeToString(sum[:]), at: time.Now()})
}
