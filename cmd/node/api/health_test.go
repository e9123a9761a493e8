package api

import "testing"

func TestHealthSaysWhatIsWrongAndWhatToDo(t *testing.T) {
	group := func(members int) Group { return Group{Name: "book club", Members: members, Epoch: 3} }
	for _, c := range []struct {
		name        string
		g           GroupStatus
		state, why  string
		todoPresent bool
	}{
		{"all there", GroupStatus{Group: group(3), OnlinePeers: 2}, StateOK, "", false},
		{"alone in it", GroupStatus{Group: group(1)}, StateOK, "", false},
		{"messages to fetch", GroupStatus{Group: group(3), OnlinePeers: 1, Missing: 3, MissingBytes: 1536, Syncing: true}, StateBehind, "3 messages (1.5 KiB) to fetch", false},
		{"epochs to fetch", GroupStatus{Group: group(3), OnlinePeers: 1, BehindEpochs: 2}, StateBehind, "2 epochs to fetch", false},
		{"nobody to fetch from", GroupStatus{Group: group(3), Missing: 1, MissingBytes: 10}, StateStalled, "1 message (10 B) to fetch, and no member online to fetch them from", true},
		{"asking", GroupStatus{Group: group(3), OnlinePeers: 1, Syncing: true}, StateSyncing, "asking members for what it lacks", false},
		{"nobody online, outbox", GroupStatus{Group: group(3), Outbox: 2}, StateOffline, "no other member online; 2 messages of yours wait for one", true},
		{"nobody online", GroupStatus{Group: group(3)}, StateOffline, "no other member online", false},
		{"pending", GroupStatus{Group: Group{Name: "x", Pending: true}}, StatePending, "waiting for a member to add you", true},
		{"pending, the inviter approves", GroupStatus{Group: Group{Name: "x", Pending: true, Approval: ApproveByInviter}}, StatePending, "waiting for the member who invited you to approve your join", true},
		{"pending, a member approves", GroupStatus{Group: Group{Name: "x", Pending: true, Approval: ApproveByMembers}}, StatePending, "waiting for a member to approve your join", true},
		{"removed", GroupStatus{Group: Group{Name: "x", Removed: true, Members: 2}}, StateRemoved, "you are no longer a member", true},
		{"damaged", GroupStatus{Group: Group{Name: "book club", Damaged: "ordering state missing"}, Missing: 4}, StateDamaged, "ordering state missing", true},
		{"stopped, disk full", GroupStatus{Group: group(3), OnlinePeers: 1, Missing: 2, Stopped: "the disk is full: 3 MiB free"}, StateStopped, "the disk is full: 3 MiB free", true},
		{"stopped", GroupStatus{Group: group(3), Stopped: "its state could not be saved: EIO"}, StateStopped, "its state could not be saved: EIO", true},
	} {
		state, why, todo := Health(c.g)
		if state != c.state || why != c.why || (todo != "") != c.todoPresent {
			t.Errorf("%s: Health = %q, %q, %q; want %q, %q, todo %v", c.name, state, why, todo, c.state, c.why, c.todoPresent)
		}
	}
	if _, _, todo := Health(GroupStatus{Group: Group{Name: "book club", Damaged: "x"}}); todo != "run parley group forget 'book club', then ask a member to remove and re-invite you" {
		t.Errorf("the way out of a damaged group: %q", todo)
	}
}
